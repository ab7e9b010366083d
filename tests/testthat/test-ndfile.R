# mx.nd.save / mx.nd.load: MXNet's NDArray file format (src/engine/ndfile.c).
# The fixture was written by MXNet 1.6 itself; the hand-built files below
# cover the older record versions MXNet wrote and malformed input.

ndfile_fixture <- function() {
  cands <- c(
    Sys.getenv("SYMNET_FIXTURES"),
    test_path("fixtures"),
    file.path(test_path(), "..", "..", "..", "shared", "fixtures"),
    "/work/shared/fixtures"
  )
  for (d in cands[nzchar(cands)]) {
    f <- file.path(d, "mxnet-checkpoint", "fashion-mnist-0039.params")
    if (file.exists(f)) return(normalizePath(f))
  }
  skip("MXNet checkpoint fixture not found (set SYMNET_FIXTURES)")
}

# Little-endian writers for hand-built files.
u32 <- function(x) as.raw((x %/% 256^(0:3)) %% 256)
u64 <- function(x) c(u32(x %% 2^32), u32(x %/% 2^32))
f32 <- function(x) writeBin(as.numeric(x), raw(), size = 4, endian = "little")
header <- function(n) c(u64(0x112), u64(0), u64(n))
V1 <- u32(0xF993FAC8)
V2 <- u32(0xF993FAC9)

write_raw <- function(bytes) {
  f <- tempfile(fileext = ".params")
  writeBin(bytes, f)
  f
}

test_that("the MXNet-written checkpoint loads with names, shapes and values", {
  f <- ndfile_fixture()
  p <- mx.nd.load(f)
  expect_type(p, "list")
  expect_equal(names(p), paste0("arg:hybridsequential16_",
                                c("conv0_weight", "conv0_bias", "dense0_weight",
                                  "dense0_bias", "dense1_weight", "dense1_bias")))
  w <- p[["arg:hybridsequential16_conv0_weight"]]
  expect_true(is.mx.ndarray(w))
  # C shape (8, 1, 4, 4) is R dim c(4, 4, 1, 8).
  expect_equal(dim(w), c(4, 4, 1, 8))
  expect_equal(dim(p[["arg:hybridsequential16_dense0_weight"]]), c(1152, 16))
  expect_equal(dim(p[["arg:hybridsequential16_dense1_bias"]]), 10)
  expect_equal(mx.nd.dtype(w), "float32")
  # Independent read of the first record's data: header 24 bytes + record
  # header (magic, stype, ndim, 4 int64 dims, dev_type, dev_id, type_flag)
  # 56 bytes.  Row-major (8,1,4,4) flattened is R's column-major c(4,4,1,8).
  con <- file(f, "rb")
  on.exit(close(con))
  invisible(readBin(con, "raw", 80))
  ref <- readBin(con, "numeric", n = 128, size = 4, endian = "little")
  expect_equal(as.vector(as.array(w)), ref)
  expect_equal(ref[1], -0.3318794, tolerance = 1e-6)
})

test_that("saving the loaded checkpoint reproduces MXNet's file byte for byte", {
  f <- ndfile_fixture()
  out <- tempfile(fileext = ".params")
  on.exit(unlink(out))
  mx.nd.save(mx.nd.load(f), out)
  expect_identical(readBin(out, "raw", file.size(out)), readBin(f, "raw", file.size(f)))
})

test_that("named and unnamed lists and single arrays round-trip", {
  out <- tempfile(fileext = ".params")
  on.exit(unlink(out))
  a <- array(seq(-3, 20, length.out = 24), c(2, 3, 4))
  b <- matrix(c(1.5, -2.25, 1e-300, 1e300, pi, 0), 3, 2)
  mx.nd.save(list(a = mx.nd.array(a), b = mx.nd.array(b, dtype = "float64")), out)
  r <- mx.nd.load(out)
  expect_equal(names(r), c("a", "b"))
  expect_equal(as.array(r$a), a, tolerance = 1e-6)
  expect_equal(dim(r$a), c(2, 3, 4))
  expect_equal(mx.nd.dtype(r$b), "float64")
  expect_equal(as.array(r$b), b, tolerance = 0)

  mx.nd.save(list(mx.nd.array(1:5), mx.nd.array(a)), out)
  r <- mx.nd.load(out)
  expect_null(names(r))
  expect_length(r, 2)
  expect_equal(as.vector(as.array(r[[1]])), 1:5)

  mx.nd.save(mx.nd.array(a), out)
  r <- mx.nd.load(out)
  expect_length(r, 1)
  expect_null(names(r))
  expect_equal(as.array(r[[1]]), a, tolerance = 1e-6)
})

test_that("integer dtypes keep their type and values", {
  out <- tempfile(fileext = ".params")
  on.exit(unlink(out))
  x <- matrix(c(-5L, 0L, 7L, 100L, -128L, 127L), 2)
  for (dt in c("int32", "int64", "int8")) {
    mx.nd.save(list(x = mx.nd.array(x, dtype = dt)), out)
    r <- mx.nd.load(out)$x
    expect_equal(mx.nd.dtype(r), dt)
    expect_equal(as.vector(as.array(r)), as.vector(x))
  }
  mx.nd.save(list(x = mx.nd.array(abs(x), dtype = "uint8")), out)
  r <- mx.nd.load(out)$x
  expect_equal(mx.nd.dtype(r), "uint8")
  expect_equal(as.vector(as.array(r)), as.vector(abs(x)))
})

test_that("saving replaces the file atomically and leaves no temporary file", {
  d <- tempfile("ndsave")
  dir.create(d)
  on.exit(unlink(d, recursive = TRUE))
  f <- file.path(d, "m-0001.params")
  mx.nd.save(list(x = mx.nd.array(1:3)), f)
  mx.nd.save(list(y = mx.nd.array(4:9)), f)
  expect_equal(list.files(d), "m-0001.params")
  r <- mx.nd.load(f)
  expect_equal(names(r), "y")
  expect_equal(as.vector(as.array(r$y)), 4:9)
  expect_error(mx.nd.save(list(x = mx.nd.array(1)), file.path(d, "no", "such", "dir.params")),
               "cannot open")
  expect_equal(list.files(d), "m-0001.params")
})

test_that("older record versions MXNet wrote still load", {
  # pre-0.10.1: no magic, uint32 ndim and uint32 dims; C shape (2, 3).
  v0 <- c(u32(2), u32(2), u32(3), u32(1), u32(0), u32(0), f32(1:6))
  # 0.10.1-0.12: magic V1, uint32 ndim, int64 dims, no storage type; (3, 2).
  v1 <- c(V1, u32(2), u64(3), u64(2), u32(1), u32(0), u32(0), f32(11:16))
  f <- write_raw(c(header(2), v0, v1, u64(2), u64(2), charToRaw("v0"), u64(2), charToRaw("v1")))
  on.exit(unlink(f))
  r <- mx.nd.load(f)
  expect_equal(names(r), c("v0", "v1"))
  expect_equal(dim(r$v0), c(3, 2))
  expect_equal(as.array(r$v0), matrix(1:6, 3, 2))
  expect_equal(dim(r$v1), c(2, 3))
  expect_equal(as.array(r$v1), matrix(11:16, 2, 3))
})

test_that("malformed files give clear errors", {
  expect_error(mx.nd.load(file.path(tempdir(), "does-not-exist.params")),
               "cannot open .*No such file or directory")

  f <- write_raw(charToRaw("this is not an ndarray file at all"))
  expect_error(mx.nd.load(f), "not an MXNet NDArray file")

  fx <- ndfile_fixture()
  bytes <- readBin(fx, "raw", file.size(fx))
  writeBin(bytes[1:30000], f)
  expect_error(mx.nd.load(f), "record 3 of 6.*truncated")
  writeBin(bytes[1:(length(bytes) - 5)], f)
  expect_error(mx.nd.load(f), "truncated")
  # trailing bytes are ignored, as MXNet ignores them
  writeBin(c(bytes, charToRaw("junk")), f)
  expect_length(mx.nd.load(f), 6)

  rec <- function(stype, ndim, dims, flag, data = raw())
    c(V2, u32(stype), u32(ndim), unlist(lapply(dims, u64)), u32(1), u32(0), u32(flag), data)
  writeBin(c(header(1), rec(0, 1, 2, 7, as.raw(c(1, 0))), u64(0)), f)
  expect_error(mx.nd.load(f), "data type flag 7 \\(bool\\) is not supported")
  writeBin(c(header(1), rec(1, 1, 2, 0), u64(0)), f)
  expect_error(mx.nd.load(f), "row_sparse")
  writeBin(c(header(1), c(V2, u32(0), u32(9), unlist(lapply(rep(1, 9), u64)))), f)
  expect_error(mx.nd.load(f), "9 dimensions")
  writeBin(c(header(1), rec(0, 1, 1e12, 0)), f)
  expect_error(mx.nd.load(f), "truncated")
  writeBin(c(header(2^40), u32(0)), f)
  expect_error(mx.nd.load(f), "claims")
  writeBin(c(header(1), u32(0xDEADBEEF), u64(0)), f)
  expect_error(mx.nd.load(f), "unknown record magic")
  writeBin(c(header(1), u32(0), u64(2)), f)
  expect_error(mx.nd.load(f), "2 names for 1")
  unlink(f)
})
