# ONNX import and export.  The protobuf wire format is read and written in C
# (src/engine/protobuf.c, through src/r_protobuf.c); the ONNX messages are
# described by a small schema here, and the mapping between ONNX operators
# and symnet's ops is R code.
#
# Layout: symnet's engine shapes are C order like ONNX (NCHW); only R's dim
# is reversed.  Every shape below is C order unless it says "R dims".  Op
# parameters are passed to the engine as strings ("(3, 3)"), which are C
# order, so nothing is reversed twice.

# ---------------------------------------------------------------------------
# Protobuf schemas (shared with R/caffe.R)
# ---------------------------------------------------------------------------

mx.internal.pb.types <- c(int64 = 0L, uint64 = 1L, int32 = 2L, uint32 = 3L, sint32 = 4L, sint64 = 5L,
                          bool = 6L, enum = 7L, float = 8L, double = 9L, fixed32 = 10L, fixed64 = 11L,
                          sfixed32 = 12L, sfixed64 = 13L, string = 14L, bytes = 15L)

# A schema from a compact description: a named list of messages, each a
# character vector of "name number type" where type is a scalar type or a
# message name, followed by "*" (repeated) or "+" (repeated, written packed).
mx.internal.pb.schema <- function(spec) {
  msgs <- names(spec)
  out <- lapply(msgs, function(m) {
    parts <- strsplit(trimws(spec[[m]]), " +")
    if (any(lengths(parts) != 3)) stop("bad protobuf schema for ", m, call. = FALSE)
    ty <- vapply(parts, `[`, "", 3)
    rep <- ifelse(endsWith(ty, "+"), 2L, ifelse(endsWith(ty, "*"), 1L, 0L))
    ty <- sub("[*+]$", "", ty)
    code <- unname(mx.internal.pb.types[ty])
    msg <- match(ty, msgs) - 1L
    if (any(is.na(code) & is.na(msg))) stop("unknown protobuf type in schema ", m, call. = FALSE)
    code[is.na(code)] <- 16L
    msg[is.na(msg)] <- -1L
    list(name = m, fname = vapply(parts, `[`, "", 1), fnum = as.integer(vapply(parts, `[`, "", 2)),
         ftype = as.integer(code), frep = as.integer(rep), fmsg = as.integer(msg))
  })
  names(out) <- msgs
  out
}

mx.internal.pb.decode <- function(raw, schema, msg) {
  .Call(C_pb_decode, raw, unname(schema), match(msg, names(schema)) - 1L)
}

mx.internal.pb.encode <- function(x, schema, msg) {
  .Call(C_pb_encode, x, unname(schema), match(msg, names(schema)) - 1L)
}

mx.internal.read.raw <- function(file, what) {
  if (!is.character(file) || length(file) != 1) stop(what, " must be a file name", call. = FALSE)
  file <- path.expand(file)
  if (!file.exists(file)) stop("cannot open '", file, "': no such file", call. = FALSE)
  size <- file.info(file)$size
  if (is.na(size) || size == 0) stop("'", file, "' is empty", call. = FALSE)
  con <- file(file, "rb")
  on.exit(close(con))
  readBin(con, "raw", n = size)
}

mx.internal.pb.cache <- new.env(parent = emptyenv())

mx.internal.onnx.schema <- function() {
  if (is.null(mx.internal.pb.cache$onnx))
    mx.internal.pb.cache$onnx <- mx.internal.pb.schema(list(
      ModelProto = c("ir_version 1 int64", "producer_name 2 string", "producer_version 3 string",
                     "domain 4 string", "model_version 5 int64", "doc_string 6 string",
                     "graph 7 GraphProto", "opset_import 8 OperatorSetIdProto*",
                     "metadata_props 14 StringStringEntryProto*", "functions 25 bytes*"),
      OperatorSetIdProto = c("domain 1 string", "version 2 int64"),
      StringStringEntryProto = c("key 1 string", "value 2 string"),
      GraphProto = c("node 1 NodeProto*", "name 2 string", "initializer 5 TensorProto*",
                     "doc_string 10 string", "input 11 ValueInfoProto*", "output 12 ValueInfoProto*",
                     "value_info 13 ValueInfoProto*", "sparse_initializer 15 bytes*"),
      NodeProto = c("input 1 string*", "output 2 string*", "name 3 string", "op_type 4 string",
                    "attribute 5 AttributeProto*", "doc_string 6 string", "domain 7 string"),
      AttributeProto = c("name 1 string", "f 2 float", "i 3 int64", "s 4 bytes", "t 5 TensorProto",
                         "g 6 bytes", "floats 7 float*", "ints 8 int64*", "strings 9 bytes*",
                         "tensors 10 TensorProto*", "graphs 11 bytes*", "doc_string 13 string",
                         "type 20 enum", "ref_attr_name 21 string", "sparse_tensor 22 bytes"),
      ValueInfoProto = c("name 1 string", "type 2 TypeProto", "doc_string 3 string"),
      TypeProto = c("tensor_type 1 TypeProtoTensor", "sequence_type 4 bytes", "map_type 5 bytes",
                    "denotation 6 string", "sparse_tensor_type 8 bytes", "optional_type 9 bytes"),
      TypeProtoTensor = c("elem_type 1 int32", "shape 2 TensorShapeProto"),
      TensorShapeProto = c("dim 1 Dimension*"),
      Dimension = c("dim_value 1 int64", "dim_param 2 string", "denotation 3 string"),
      TensorProto = c("dims 1 int64*", "data_type 2 int32", "segment 3 bytes", "float_data 4 float+",
                      "int32_data 5 int32+", "string_data 6 bytes*", "int64_data 7 int64+", "name 8 string",
                      "raw_data 9 bytes", "double_data 10 double+", "uint64_data 11 uint64+",
                      "doc_string 12 string", "external_data 13 StringStringEntryProto*",
                      "data_location 14 enum")))
  mx.internal.pb.cache$onnx
}

# ONNX TensorProto data types: name, raw element kind (sn_pb_raw_kind) and
# the typed field that holds the values when raw_data is absent.
mx.internal.onnx.dtypes <- data.frame(
  code = c(1L, 2L, 3L, 4L, 5L, 6L, 7L, 9L, 10L, 11L, 12L, 13L, 16L),
  name = c("FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "BOOL", "FLOAT16", "DOUBLE",
           "UINT32", "UINT64", "BFLOAT16"),
  kind = c(0L, 5L, 4L, 7L, 6L, 8L, 10L, 12L, 2L, 1L, 9L, 11L, 3L),
  field = c("float_data", "int32_data", "int32_data", "int32_data", "int32_data", "int32_data", "int64_data",
            "int32_data", "int32_data", "double_data", "uint64_data", "uint64_data", "int32_data"),
  stringsAsFactors = FALSE)

mx.internal.onnx.dtype.name <- function(code) {
  i <- match(code, mx.internal.onnx.dtypes$code)
  if (is.na(i)) {
    other <- c("0" = "UNDEFINED", "8" = "STRING", "14" = "COMPLEX64", "15" = "COMPLEX128")
    n <- other[as.character(code)]
    return(if (is.na(n)) paste0("type ", code) else unname(n))
  }
  mx.internal.onnx.dtypes$name[[i]]
}

# A decoded TensorProto as list(name, dims (C order), values (double), dtype).
mx.internal.onnx.tensor <- function(t, what = "tensor") {
  name <- if (is.null(t$name)) "" else t$name
  label <- if (nzchar(name)) paste0(what, " '", name, "'") else what
  dims <- if (is.null(t$dims)) numeric(0) else t$dims
  if (any(dims < 0)) stop(label, " has a negative dimension", call. = FALSE)
  n <- prod(dims)
  if (!is.finite(n) || n > 2^40) stop(label, " has dims (", paste(dims, collapse = ", "), "): too large", call. = FALSE)
  code <- if (is.null(t$data_type)) 0L else as.integer(t$data_type)
  if (!is.null(t$data_location) && t$data_location == 1)
    stop(label, " keeps its data in an external file, which is not supported", call. = FALSE)
  i <- match(code, mx.internal.onnx.dtypes$code)
  if (is.na(i))
    stop(label, " has data type ", mx.internal.onnx.dtype.name(code), ", which is not supported", call. = FALSE)
  kind <- mx.internal.onnx.dtypes$kind[[i]]
  if (!is.null(t$raw_data)) {
    values <- .Call(C_pb_unpack, t$raw_data, kind)
  } else {
    values <- t[[mx.internal.onnx.dtypes$field[[i]]]]
    if (is.null(values)) values <- numeric(0)
    if (code %in% c(10L, 16L)) # half-precision bits in int32_data
      values <- .Call(C_pb_unpack, writeBin(as.integer(values %% 65536), raw(), size = 2, endian = "little"), kind)
  }
  if (length(values) != n)
    stop(label, " has ", length(values), " values but its dims (", paste(dims, collapse = ", "), ") need ", n,
         call. = FALSE)
  list(name = name, dims = as.numeric(dims), values = as.numeric(values), dtype = code)
}

# C-order tensor values -> R array (reversed dims); 0-d gives a length-1 vector.
mx.internal.onnx.as.array <- function(t) {
  if (length(t$dims) == 0) return(t$values)
  array(t$values, dim = rev(t$dims))
}

# R array -> C-order tensor record.
mx.internal.onnx.from.array <- function(x, name = "", dtype = 1L) {
  d <- if (is.null(dim(x))) length(x) else dim(x)
  list(name = name, dims = rev(as.numeric(d)), values = as.numeric(x), dtype = dtype)
}

# A tensor record -> TensorProto list for the encoder.
mx.internal.onnx.tensor.proto <- function(t) {
  p <- list(dims = t$dims, data_type = t$dtype, name = t$name)
  if (t$dtype == 1L) p$raw_data <- writeBin(as.double(t$values), raw(), size = 4, endian = "little")
  else if (t$dtype == 11L) p$raw_data <- writeBin(as.double(t$values), raw(), size = 8, endian = "little")
  else if (t$dtype == 7L) p$int64_data <- as.numeric(t$values)
  else stop("cannot write ONNX tensors of type ", mx.internal.onnx.dtype.name(t$dtype), call. = FALSE)
  p
}

#' Read and write ONNX tensor files
#'
#' `mx.onnx.read.tensor` reads a serialized ONNX `TensorProto` (the `.pb`
#' files of ONNX's test data) into an R array; `mx.onnx.write.tensor` writes
#' one.  R dims are the reverse of the tensor's dims, as everywhere in symnet.
#'
#' @param file A file name.
#' @param x An R array or vector (written as float32 unless `dtype` says otherwise).
#' @param name The tensor's name.
#' @param dtype ONNX data type: `"float"`, `"double"` or `"int64"`.
#' @return `mx.onnx.read.tensor`: an R array (a plain vector for 0-d and
#'   1-d tensors) with attributes `onnx.name` and `onnx.dtype`.
#' @export
mx.onnx.read.tensor <- function(file) {
  raw <- mx.internal.read.raw(file, "file")
  t <- mx.internal.onnx.tensor(mx.internal.pb.decode(raw, mx.internal.onnx.schema(), "TensorProto"))
  a <- mx.internal.onnx.as.array(t)
  attr(a, "onnx.name") <- t$name
  attr(a, "onnx.dtype") <- mx.internal.onnx.dtype.name(t$dtype)
  a
}

#' @rdname mx.onnx.read.tensor
#' @export
mx.onnx.write.tensor <- function(x, file, name = "", dtype = "float") {
  code <- switch(dtype, float = 1L, double = 11L, int64 = 7L,
                 stop("dtype must be \"float\", \"double\" or \"int64\"", call. = FALSE))
  if (is.mx.ndarray(x)) x <- as.array(x)
  if (!is.numeric(x) && !is.logical(x)) stop("x must be numeric", call. = FALSE)
  t <- mx.internal.onnx.from.array(x, name, code)
  if (is.null(dim(x)) && !is.null(attr(x, "onnx.scalar"))) t$dims <- numeric(0)
  raw <- mx.internal.pb.encode(mx.internal.onnx.tensor.proto(t), mx.internal.onnx.schema(), "TensorProto")
  mx.internal.atomic.write(function(f) writeBin(raw, f), file)
  invisible(file)
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

# A C-order tuple as the engine's parameter string.
mx.internal.onnx.tuple <- function(v) {
  v <- vapply(as.numeric(v), mx.internal.num.string, "")
  paste0("(", paste(v, collapse = ", "), if (length(v) == 1) ",)" else ")")
}

mx.internal.onnx.num <- function(x) {
  x <- as.numeric(x)
  if (is.infinite(x)) return(if (x > 0) "inf" else "-inf")
  if (x == round(x) && abs(x) < 1e15) return(sprintf("%.0f", x))
  sprintf("%.17g", x)
}

# Parses an engine tuple string "(1, 2)" or "[1, 2]" into numbers.
mx.internal.onnx.parse.tuple <- function(s) {
  if (is.null(s) || is.na(s)) return(NULL)
  s <- gsub("[][()[:space:]]", "", s)
  if (!nzchar(s)) return(numeric(0))
  v <- strsplit(s, ",", fixed = TRUE)[[1]]
  v <- v[nzchar(v)]
  as.numeric(ifelse(v == "None", NA, v))
}

mx.internal.onnx.bool <- function(s) isTRUE(tolower(s) %in% c("true", "1"))

# Broadcasts C-order constant values to out dims (numpy rules) and applies f.
mx.internal.onnx.bcast <- function(a, b, f) {
  r <- max(length(a$dims), length(b$dims))
  da <- c(rep(1, r - length(a$dims)), a$dims)
  db <- c(rep(1, r - length(b$dims)), b$dims)
  if (any(da != db & da != 1 & db != 1)) return(NULL)
  dout <- pmax(da, db)
  if (any(da == 0 | db == 0)) dout[da == 0 | db == 0] <- 0
  n <- prod(dout)
  if (n > 2^28) return(NULL)
  idx <- function(d) {
    if (n == 0) return(integer(0))
    # C-order linear index of each output element in the input
    lin <- seq_len(n) - 1
    out <- numeric(n)
    stride <- 1
    ostride <- 1
    for (k in rev(seq_len(r))) {
      coord <- (lin %/% ostride) %% dout[[k]]
      if (d[[k]] != 1) out <- out + coord * stride
      stride <- stride * d[[k]]
      ostride <- ostride * dout[[k]]
    }
    out + 1
  }
  list(name = "", dims = dout, values = f(a$values[idx(da)], b$values[idx(db)]), dtype = a$dtype)
}

# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------

#' Import an ONNX model
#'
#' Reads an ONNX model file and builds the equivalent symnet network:
#' the graph becomes an `MXSymbol` built from symnet's operators, the
#' initializers become `arg.params` and the running mean and variance of
#' `BatchNormalization` become `aux.params`, so the result works with
#' [predict.MXFeedForwardModel()], [mx.model.save()] and fine-tuning.  When
#' the graph has a single data input, it is named `"data"` (the name
#' `predict` feeds); the ONNX names of the inputs are kept in the
#' attribute `onnx.inputs` of the result.
#'
#' Supported operators (opsets 7 to 18 of the default domain): Conv (with
#' groups, dilations, explicit, asymmetric and automatic padding),
#' ConvTranspose, Relu, LeakyRelu, Elu, PRelu, Tanh, Sigmoid, Softplus,
#' Softsign, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
#' BatchNormalization (inference form), Gemm, MatMul, Add, Sub, Mul, Div,
#' Sum, Max, Min, Exp, Log, Sqrt, Abs, Neg, Reciprocal, Floor, Ceil, Flatten,
#' Reshape, Transpose, Concat, Dropout, Softmax, LogSoftmax, Clip, LRN, Pad,
#' Identity and Constant.  Shape inputs (Reshape's shape, Pad's pads) must
#' be constants (initializers, Constant nodes, or given in `constants`).
#' Anything else gives an error naming the node, its operator and the
#' problem.  Computation is in floating point: integer-typed inputs are
#' accepted with a warning (integer division and overflow are not
#' reproduced).
#'
#' @param file An `.onnx` file.
#' @param constants Optional named list of values (R arrays or vectors) for
#'   graph inputs that should be treated as constants, e.g. the shape input
#'   of a Reshape.
#' @return An `MXFeedForwardModel`.
#' @examples
#' \dontrun{
#' model <- mx.onnx.import("resnet18.onnx")
#' prob <- predict(model, images)
#' }
#' @export
mx.onnx.import <- function(file, constants = NULL) {
  raw <- mx.internal.read.raw(file, "file")
  m <- tryCatch(mx.internal.pb.decode(raw, mx.internal.onnx.schema(), "ModelProto"),
                error = function(e) stop("mx.onnx.import: '", file, "' is not a valid ONNX model: ",
                                         conditionMessage(e), call. = FALSE))
  mx.internal.onnx.import.model(m, constants)
}

mx.internal.onnx.import.model <- function(m, constants = NULL) {
  if (is.null(m$graph)) stop("mx.onnx.import: the file has no graph (not an ONNX model?)", call. = FALSE)
  opset <- 1
  for (o in m$opset_import) {
    dom <- if (is.null(o$domain)) "" else o$domain
    if (dom %in% c("", "ai.onnx") && !is.null(o$version)) opset <- o$version
  }
  if (opset > 18) warning("mx.onnx.import: the model uses opset ", opset, "; opsets above 18 are not tested",
                          call. = FALSE)
  mx.internal.onnx.import.graph(m$graph, opset, constants)
}

mx.internal.onnx.import.graph <- function(g, opset, constants) {
  st <- new.env(parent = emptyenv())
  st$opset <- opset
  st$vals <- new.env(parent = emptyenv())   # ONNX value name -> list(sym, const, shape)
  st$arg <- list()                          # symnet arg name -> R array
  st$aux <- list()
  st$used <- character()                    # symnet names taken
  st$inputs <- list()                       # symnet input name -> C-order shape (NA unknown)
  st$symbolic <- FALSE

  # Initializers and given constants.
  for (t in g$initializer) {
    tt <- mx.internal.onnx.tensor(t, "initializer")
    if (!nzchar(tt$name)) stop("mx.onnx.import: an initializer has no name", call. = FALSE)
    assign(tt$name, list(const = tt), envir = st$vals)
  }
  if (length(g$sparse_initializer)) stop("mx.onnx.import: sparse initializers are not supported", call. = FALSE)
  if (!is.null(constants)) {
    if (!is.list(constants) || is.null(names(constants)) || any(!nzchar(names(constants))))
      stop("constants must be a named list", call. = FALSE)
    for (n in names(constants)) {
      v <- constants[[n]]
      if (is.mx.ndarray(v)) v <- as.array(v)
      t <- mx.internal.onnx.from.array(v, n)
      if (is.null(dim(v)) && length(v) == 1 && isTRUE(attr(v, "onnx.scalar"))) t$dims <- numeric(0)
      if (!is.null(attr(v, "onnx.dims"))) t$dims <- attr(v, "onnx.dims")
      assign(n, list(const = t), envir = st$vals)
    }
  }
  # Data inputs.
  for (vi in g$input)
    if (is.null(vi$name) || !nzchar(vi$name)) stop("mx.onnx.import: a graph input has no name", call. = FALSE)
  real.inputs <- Filter(function(vi) !exists(vi$name, envir = st$vals, inherits = FALSE), g$input)
  onnx.names <- vapply(real.inputs, function(vi) vi$name, "")
  sym.names <- if (length(real.inputs) == 1) "data" else onnx.names
  for (i in seq_along(real.inputs)) {
    vi <- real.inputs[[i]]
    tt <- vi$type$tensor_type
    if (is.null(tt)) stop("mx.onnx.import: input '", vi$name, "' is not a tensor", call. = FALSE)
    et <- if (is.null(tt$elem_type)) 1L else tt$elem_type
    if (!et %in% mx.internal.onnx.dtypes$code)
      stop("mx.onnx.import: input '", vi$name, "' has type ", mx.internal.onnx.dtype.name(et),
           "; only numeric data inputs are supported", call. = FALSE)
    if (!et %in% c(1L, 10L, 11L, 16L))
      warning("mx.onnx.import: input '", vi$name, "' has type ", mx.internal.onnx.dtype.name(et),
              "; symnet computes it in floating point (integer division and overflow are not reproduced)",
              call. = FALSE)
    shape <- NULL
    if (!is.null(tt$shape)) {
      shape <- vapply(tt$shape$dim, function(d) if (!is.null(d$dim_value) && d$dim_value > 0) d$dim_value else NA_real_, 0)
      if (anyNA(shape)) st$symbolic <- TRUE
    } else st$symbolic <- TRUE
    nm <- sym.names[[i]]
    st$used <- c(st$used, nm)
    st$inputs[[nm]] <- shape
    s <- mx.symbol.Variable(nm)
    assign(vi$name, list(sym = s, shape = if (!anyNA(shape)) shape), envir = st$vals)
  }

  for (i in seq_along(g$node)) mx.internal.onnx.node(st, g$node[[i]], i)

  outs <- lapply(g$output, function(vo) {
    if (is.null(vo$name) || !nzchar(vo$name)) stop("mx.onnx.import: a graph output has no name", call. = FALSE)
    mx.internal.onnx.sym(st, vo$name, NULL)
  })
  if (!length(outs)) stop("mx.onnx.import: the graph has no outputs", call. = FALSE)
  symbol <- if (length(outs) == 1) outs[[1]] else mx.symbol.Group(outs)
  args <- arguments(symbol)
  aux <- symbol$auxiliary.states
  arg.params <- lapply(st$arg[intersect(names(st$arg), args)], mx.nd.array)
  aux.params <- lapply(st$aux[intersect(names(st$aux), aux)], mx.nd.array)
  model <- structure(list(symbol = symbol, arg.params = arg.params, aux.params = aux.params),
                     class = "MXFeedForwardModel")
  attr(model, "onnx.inputs") <- stats::setNames(onnx.names, sym.names)
  model
}

mx.internal.onnx.fail <- function(node, ...) {
  stop("mx.onnx.import: node '", node$name, "' (", node$op_type, "): ", ..., call. = FALSE)
}

mx.internal.onnx.val <- function(st, name, node) {
  if (!exists(name, envir = st$vals, inherits = FALSE)) {
    if (is.null(node)) stop("mx.onnx.import: graph output '", name, "' is not computed by any node", call. = FALSE)
    mx.internal.onnx.fail(node, "input '", name, "' is not defined (the nodes must be in topological order)")
  }
  get(name, envir = st$vals, inherits = FALSE)
}

mx.internal.onnx.const <- function(st, name, node) {
  if (is.null(name) || !nzchar(name)) return(NULL)
  mx.internal.onnx.val(st, name, node)$const
}

mx.internal.onnx.unique <- function(st, name) {
  base <- if (nzchar(name)) name else "node"
  nm <- base
  k <- 1
  while (nm %in% st$used) {
    nm <- paste0(base, "_", k)
    k <- k + 1
  }
  st$used <- c(st$used, nm)
  nm
}

# The symbol of an ONNX value; a constant becomes a variable with its value
# in arg.params (or aux.params).
mx.internal.onnx.sym <- function(st, name, node, aux = FALSE) {
  v <- mx.internal.onnx.val(st, name, node)
  if (!is.null(v$sym)) return(v$sym)
  t <- v$const
  dims <- if (length(t$dims) == 0) 1 else t$dims
  nm <- mx.internal.onnx.unique(st, name)
  arr <- if (length(dims) == 1) array(t$values, dim = dims) else array(t$values, dim = rev(dims))
  if (aux) st$aux[[nm]] <- arr else st$arg[[nm]] <- arr
  # the shape hint lets shape inference (and predict) work from the data shape
  # alone, also where an op cannot infer it (e.g. the rhs of broadcast_add)
  v$sym <- mx.symbol.Variable(nm, attr = list("__shape__" = mx.internal.onnx.tuple(dims)))
  v$shape <- dims
  assign(name, v, envir = st$vals)
  v$sym
}

# A new constant variable made by the importer (a transformed weight).
mx.internal.onnx.new.const <- function(st, name, dims, values) {
  nm <- mx.internal.onnx.unique(st, name)
  st$arg[[nm]] <- array(values, dim = if (length(dims) <= 1) max(1, prod(dims)) else rev(dims))
  key <- paste0("\001", nm)
  d <- if (length(dims)) dims else 1
  assign(key, list(sym = mx.symbol.Variable(nm, attr = list("__shape__" = mx.internal.onnx.tuple(d))), shape = d),
         envir = st$vals)
  get(key, envir = st$vals)$sym
}

# The C-order shape of an ONNX value, or NULL when unknown.  Dims of data
# inputs that the model leaves symbolic are taken as 1 here, which only
# matters for the ranks and trailing dims the importer asks for.
mx.internal.onnx.shape <- function(st, name, node) {
  v <- mx.internal.onnx.val(st, name, node)
  if (!is.null(v$const)) return(v$const$dims)
  if (!is.null(v$shape)) return(v$shape)
  s <- v$sym
  shapes <- list()
  for (a in c(arguments(s), s$auxiliary.states)) {
    if (!is.null(st$inputs[[a]]) || a %in% names(st$inputs)) {
      sh <- st$inputs[[a]]
      if (is.null(sh)) return(NULL)
      sh[is.na(sh)] <- 1
      shapes[[a]] <- rev(sh)
    } else if (!is.null(st$arg[[a]])) {
      shapes[[a]] <- dim(st$arg[[a]])
    } else if (!is.null(st$aux[[a]])) {
      shapes[[a]] <- dim(st$aux[[a]])
    }
  }
  inf <- tryCatch(do.call(mx.symbol.infer.shape, c(list(s), shapes)), error = function(e) NULL)
  if (is.null(inf) || !length(inf$out.shapes)) return(NULL)
  shape <- rev(as.numeric(inf$out.shapes[[1]]))
  v$shape <- shape
  assign(name, v, envir = st$vals)
  shape
}

mx.internal.onnx.set <- function(st, name, sym = NULL, const = NULL) {
  if (!nzchar(name)) return(invisible(NULL))
  if (!is.null(const)) const$name <- name
  assign(name, list(sym = sym, const = const), envir = st$vals)
  invisible(NULL)
}

# Attributes of a node as a named list of R values.
mx.internal.onnx.attrs <- function(node) {
  out <- list()
  for (a in node$attribute) {
    if (is.null(a$name) || !nzchar(a$name)) mx.internal.onnx.fail(node, "an attribute has no name")
    if (!is.null(a$ref_attr_name)) mx.internal.onnx.fail(node, "attribute references (functions) are not supported")
    type <- a$type
    if (is.null(type)) { # IR < 0.0.2: the field that is set tells
      type <- if (!is.null(a$f)) 1 else if (!is.null(a$i)) 2 else if (!is.null(a$s)) 3 else if (!is.null(a$t)) 4 else
        if (!is.null(a$g)) 5 else if (!is.null(a$floats)) 6 else if (!is.null(a$ints)) 7 else
        if (!is.null(a$strings)) 8 else if (!is.null(a$tensors)) 9 else 0
    }
    val <- switch(as.character(type),
      "1" = if (is.null(a$f)) 0 else a$f,
      "2" = if (is.null(a$i)) 0 else a$i,
      "3" = if (is.null(a$s)) "" else rawToChar(a$s),
      "4" = if (is.null(a$t)) mx.internal.onnx.fail(node, "tensor attribute '", a$name, "' is empty")
            else mx.internal.onnx.tensor(a$t, paste0("attribute ", a$name)),
      "6" = if (is.null(a$floats)) numeric(0) else a$floats,
      "7" = if (is.null(a$ints)) numeric(0) else a$ints,
      "8" = vapply(a$strings, rawToChar, ""),
      structure(list(), class = "onnx.unsupported.attr", type = type))
    out[[a$name]] <- val
  }
  out
}

mx.internal.onnx.node <- function(st, node, index) {
  if (is.null(node$op_type)) stop("mx.onnx.import: node ", index, " has no op_type", call. = FALSE)
  if (is.null(node$name) || !nzchar(node$name)) node$name <- paste0(tolower(node$op_type), index - 1)
  dom <- if (is.null(node$domain)) "" else node$domain
  if (!dom %in% c("", "ai.onnx"))
    mx.internal.onnx.fail(node, "operators of domain '", dom, "' are not supported")
  h <- mx.internal.onnx.handlers[[node$op_type]]
  if (is.null(h)) mx.internal.onnx.fail(node, "operator ", node$op_type, " is not supported")
  attrs <- mx.internal.onnx.attrs(node)
  bad <- setdiff(names(attrs), h$attrs)
  if (length(bad))
    mx.internal.onnx.fail(node, "attribute '", bad[[1]], "' is not supported")
  for (a in names(attrs))
    if (inherits(attrs[[a]], "onnx.unsupported.attr"))
      mx.internal.onnx.fail(node, "attribute '", a, "' has a type that is not supported")
  node$input <- if (is.null(node$input)) character() else node$input
  node$output <- if (is.null(node$output)) character() else node$output
  if (!length(node$output)) mx.internal.onnx.fail(node, "the node has no outputs")
  # extra outputs must be unused (empty names)
  if (length(node$output) > h$nout && any(nzchar(node$output[-seq_len(h$nout)])))
    mx.internal.onnx.fail(node, "output ", h$nout + 1, " ('", node$output[[h$nout + 1]], "') is not supported")
  ctx <- list(st = st, node = node, attrs = attrs, name = mx.internal.onnx.unique(st, node$name))
  h$fun(ctx)
  invisible(NULL)
}

# ---- accessors used by the handlers ----

mx.internal.onnx.in <- function(ctx, i) {
  if (length(ctx$node$input) < i || !nzchar(ctx$node$input[[i]])) return(NULL)
  ctx$node$input[[i]]
}

mx.internal.onnx.need <- function(ctx, i) {
  n <- mx.internal.onnx.in(ctx, i)
  if (is.null(n)) mx.internal.onnx.fail(ctx$node, "input ", i, " is missing")
  n
}

mx.internal.onnx.a <- function(ctx, name, default = NULL) {
  v <- ctx$attrs[[name]]
  if (is.null(v)) default else v
}

mx.internal.onnx.out <- function(ctx, sym = NULL, const = NULL) {
  mx.internal.onnx.set(ctx$st, ctx$node$output[[1]], sym, const)
}

mx.internal.onnx.op <- function(ctx, op, inputs, params = list(), suffix = NULL) {
  name <- if (is.null(suffix)) ctx$name else mx.internal.onnx.unique(ctx$st, paste0(ctx$name, "_", suffix))
  tryCatch(mx.symbol.internal.create(op, inputs, params, name),
           error = function(e) mx.internal.onnx.fail(ctx$node, conditionMessage(e)))
}

mx.internal.onnx.S <- function(ctx, i, aux = FALSE) mx.internal.onnx.sym(ctx$st, mx.internal.onnx.need(ctx, i), ctx$node, aux)
mx.internal.onnx.C <- function(ctx, i) mx.internal.onnx.const(ctx$st, mx.internal.onnx.in(ctx, i), ctx$node)
mx.internal.onnx.shp <- function(ctx, i) mx.internal.onnx.shape(ctx$st, mx.internal.onnx.need(ctx, i), ctx$node)

mx.internal.onnx.need.shape <- function(ctx, i, why) {
  s <- mx.internal.onnx.shp(ctx, i)
  if (is.null(s)) mx.internal.onnx.fail(ctx$node, "the shape of input '", ctx$node$input[[i]], "' is unknown; ", why)
  s
}

# Constant integer vector input (shapes, pads) or attribute.
mx.internal.onnx.const.ints <- function(ctx, i, what) {
  c <- mx.internal.onnx.C(ctx, i)
  if (is.null(c)) mx.internal.onnx.fail(ctx$node, what, " (input ", i, ") must be a constant (an initializer ",
                                        "or a Constant node), not a computed tensor")
  c$values
}

# Explicit (begin, end) pads per spatial dim from pads / auto_pad.
mx.internal.onnx.pads <- function(ctx, k, s, d, nsp) {
  ap <- mx.internal.onnx.a(ctx, "auto_pad", "NOTSET")
  if (ap %in% c("NOTSET", "")) {
    p <- mx.internal.onnx.a(ctx, "pads", rep(0, 2 * nsp))
    if (length(p) != 2 * nsp) mx.internal.onnx.fail(ctx$node, "pads has ", length(p), " values, expected ", 2 * nsp)
    if (any(p < 0)) mx.internal.onnx.fail(ctx$node, "negative pads are not supported")
    return(list(b = p[seq_len(nsp)], e = p[nsp + seq_len(nsp)]))
  }
  if (ap == "VALID") return(list(b = rep(0, nsp), e = rep(0, nsp)))
  if (!ap %in% c("SAME_UPPER", "SAME_LOWER")) mx.internal.onnx.fail(ctx$node, "auto_pad '", ap, "' is not supported")
  xs <- mx.internal.onnx.need.shape(ctx, 1, "auto_pad needs it")
  x <- xs[-(1:2)]
  out <- ceiling(x / s)
  total <- pmax(0, (out - 1) * s + (k - 1) * d + 1 - x)
  small <- floor(total / 2)
  if (ap == "SAME_UPPER") list(b = small, e = total - small) else list(b = total - small, e = small)
}

# Pads the spatial dims of a 4-D/5-D symbol (constant mode).
mx.internal.onnx.pad.sym <- function(ctx, x, b, e, value, suffix = "pad") {
  nsp <- length(b)
  if (!nsp %in% 2:3)
    mx.internal.onnx.fail(ctx$node, "asymmetric padding is only supported for 2-D and 3-D inputs")
  pw <- c(0, 0, 0, 0, as.vector(rbind(b, e)))
  mx.internal.onnx.op(ctx, "Pad", list(x), list(mode = "constant", pad_width = mx.internal.onnx.tuple(pw),
                                                 constant_value = mx.internal.onnx.num(value)), suffix)
}

# ---- handlers ----

mx.internal.onnx.h.conv <- function(ctx) {
  st <- ctx$st
  x <- mx.internal.onnx.S(ctx, 1)
  ws <- mx.internal.onnx.shp(ctx, 2)
  if (is.null(ws) || length(ws) < 3) mx.internal.onnx.fail(ctx$node, "the weight's shape is unknown")
  nsp <- length(ws) - 2
  if (nsp > 3) mx.internal.onnx.fail(ctx$node, nsp, "-D convolution is not supported")
  k <- mx.internal.onnx.a(ctx, "kernel_shape", ws[-(1:2)])
  if (length(k) != nsp || any(k != ws[-(1:2)]))
    mx.internal.onnx.fail(ctx$node, "kernel_shape (", paste(k, collapse = ", "), ") does not match the weight's shape (",
                          paste(ws, collapse = ", "), ")")
  s <- mx.internal.onnx.a(ctx, "strides", rep(1, nsp))
  d <- mx.internal.onnx.a(ctx, "dilations", rep(1, nsp))
  g <- mx.internal.onnx.a(ctx, "group", 1)
  p <- mx.internal.onnx.pads(ctx, k, s, d, nsp)
  m <- pmin(p$b, p$e)
  if (any(p$b != p$e)) x <- mx.internal.onnx.pad.sym(ctx, x, p$b - m, p$e - m, 0)
  bias <- if (!is.null(mx.internal.onnx.in(ctx, 3))) mx.internal.onnx.S(ctx, 3)
  w <- mx.internal.onnx.S(ctx, 2)
  out <- mx.internal.onnx.op(ctx, "Convolution", list(data = x, weight = w, bias = bias),
    list(kernel = mx.internal.onnx.tuple(k), stride = mx.internal.onnx.tuple(s), dilate = mx.internal.onnx.tuple(d),
         pad = mx.internal.onnx.tuple(m), num_filter = ws[[1]], num_group = g, no_bias = is.null(bias)))
  mx.internal.onnx.out(ctx, out)
}

mx.internal.onnx.h.convtranspose <- function(ctx) {
  x <- mx.internal.onnx.S(ctx, 1)
  ws <- mx.internal.onnx.shp(ctx, 2)
  if (is.null(ws) || length(ws) < 3) mx.internal.onnx.fail(ctx$node, "the weight's shape is unknown")
  nsp <- length(ws) - 2
  if (nsp > 3) mx.internal.onnx.fail(ctx$node, nsp, "-D transposed convolution is not supported")
  k <- mx.internal.onnx.a(ctx, "kernel_shape", ws[-(1:2)])
  if (length(k) != nsp || any(k != ws[-(1:2)]))
    mx.internal.onnx.fail(ctx$node, "kernel_shape does not match the weight's shape")
  s <- mx.internal.onnx.a(ctx, "strides", rep(1, nsp))
  d <- mx.internal.onnx.a(ctx, "dilations", rep(1, nsp))
  g <- mx.internal.onnx.a(ctx, "group", 1)
  op <- mx.internal.onnx.a(ctx, "output_padding", rep(0, nsp))
  if (length(op) != nsp) mx.internal.onnx.fail(ctx$node, "output_padding must have ", nsp, " values")
  ap <- mx.internal.onnx.a(ctx, "auto_pad", "NOTSET")
  os <- mx.internal.onnx.a(ctx, "output_shape")
  in.sp <- NULL
  if (!is.null(os) || ap %in% c("SAME_UPPER", "SAME_LOWER")) {
    in.sp <- mx.internal.onnx.need.shape(ctx, 1, "output_shape / auto_pad need it")[-(1:2)]
    if (is.null(os)) os <- in.sp * s
    if (length(os) > nsp) os <- os[length(os) - nsp + seq_len(nsp)]
    total <- s * (in.sp - 1) + op + (k - 1) * d + 1 - os
    half <- floor(total / 2) # negative totals extend the output at the end
    if (ap == "SAME_UPPER") { b <- half; e <- total - half } else { b <- total - half; e <- half }
  } else if (ap == "VALID" ) {
    b <- e <- rep(0, nsp)
  } else {
    if (!ap %in% c("NOTSET", "")) mx.internal.onnx.fail(ctx$node, "auto_pad '", ap, "' is not supported")
    p <- mx.internal.onnx.a(ctx, "pads", rep(0, 2 * nsp))
    if (length(p) != 2 * nsp || any(p < 0)) mx.internal.onnx.fail(ctx$node, "pads must be ", 2 * nsp, " values >= 0")
    b <- p[seq_len(nsp)]
    e <- p[nsp + seq_len(nsp)]
  }
  bias <- if (!is.null(mx.internal.onnx.in(ctx, 3))) mx.internal.onnx.S(ctx, 3)
  w <- mx.internal.onnx.S(ctx, 2)
  params <- list(kernel = mx.internal.onnx.tuple(k), stride = mx.internal.onnx.tuple(s),
                 dilate = mx.internal.onnx.tuple(d), num_filter = ws[[2]] * g, num_group = g,
                 no_bias = is.null(bias))
  if (all(b == e) && all(op < s)) {
    params$pad <- mx.internal.onnx.tuple(b)
    params$adj <- mx.internal.onnx.tuple(op)
    mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Deconvolution", list(data = x, weight = w, bias = bias), params))
    return(invisible())
  }
  # Full transposed convolution, then crop [b, L0 + op - e) in each dim.
  if (any(b < 0)) mx.internal.onnx.fail(ctx$node, "negative begin pads are not supported")
  adj <- pmax(0, op - e)
  if (any(adj >= s)) mx.internal.onnx.fail(ctx$node, "output_padding larger than the stride is not supported")
  if (is.null(in.sp)) in.sp <- mx.internal.onnx.need.shape(ctx, 1, "asymmetric pads need it")[-(1:2)]
  L0 <- s * (in.sp - 1) + (k - 1) * d + 1
  params$pad <- mx.internal.onnx.tuple(rep(0, nsp))
  params$adj <- mx.internal.onnx.tuple(adj)
  y <- mx.internal.onnx.op(ctx, "Deconvolution", list(data = x, weight = w, bias = bias), params, "full")
  for (i in seq_len(nsp)) {
    end <- L0[[i]] + op[[i]] - e[[i]]
    if (b[[i]] == 0 && end == L0[[i]] + adj[[i]]) next
    y <- mx.internal.onnx.op(ctx, "slice_axis", list(y), list(axis = i + 1, begin = b[[i]], end = end),
                             if (i == nsp) NULL else paste0("crop", i))
  }
  if (y$outputs[[1]] != paste0(ctx$name, "_output"))
    y <- mx.internal.onnx.op(ctx, "_copy", list(y))
  mx.internal.onnx.out(ctx, y)
}

mx.internal.onnx.h.pool <- function(type) function(ctx) {
  x <- mx.internal.onnx.S(ctx, 1)
  k <- mx.internal.onnx.a(ctx, "kernel_shape")
  if (is.null(k)) mx.internal.onnx.fail(ctx$node, "kernel_shape is required")
  nsp <- length(k)
  s <- mx.internal.onnx.a(ctx, "strides", rep(1, nsp))
  d <- mx.internal.onnx.a(ctx, "dilations", rep(1, nsp))
  if (any(d != 1)) mx.internal.onnx.fail(ctx$node, "dilated pooling is not supported")
  if (mx.internal.onnx.a(ctx, "storage_order", 0) != 0) mx.internal.onnx.fail(ctx$node, "storage_order 1 is not supported")
  ceil <- mx.internal.onnx.a(ctx, "ceil_mode", 0) != 0
  cip <- mx.internal.onnx.a(ctx, "count_include_pad", 0) != 0
  p <- mx.internal.onnx.pads(ctx, k, s, d, nsp)
  base <- list(kernel = mx.internal.onnx.tuple(k), pool_type = type, stride = mx.internal.onnx.tuple(s))
  if (type == "avg") base$count_include_pad <- cip
  pool <- function(data, pad, conv, suffix = NULL, ptype = type)
    mx.internal.onnx.op(ctx, "Pooling", list(data), c(utils::modifyList(base, list(pool_type = ptype)),
                         list(pad = mx.internal.onnx.tuple(pad), pooling_convention = conv)), suffix)
  xs <- mx.internal.onnx.shp(ctx, 1)
  if (is.null(xs)) {
    if (any(p$b != p$e)) mx.internal.onnx.fail(ctx$node, "asymmetric pads need a known input shape")
    return(mx.internal.onnx.out(ctx, pool(x, p$b, if (ceil) "full" else "valid")))
  }
  xsp <- xs[-(1:2)]
  if (length(xsp) != nsp) mx.internal.onnx.fail(ctx$node, "kernel_shape has ", nsp, " dims but the input has ", length(xs))
  span <- xsp + p$b + p$e - k
  if (any(span < 0)) mx.internal.onnx.fail(ctx$node, "the kernel is larger than the padded input")
  n <- if (ceil) ceiling(span / s) + 1 else floor(span / s) + 1
  # (PyTorch, Caffe, onnxruntime) the last window must start inside the input or its left padding
  if (ceil) n <- ifelse((n - 1) * s >= xsp + p$b, n - 1, n)
  if (all(p$b == p$e)) {
    if (all(floor((xsp + 2 * p$b - k) / s) + 1 == n)) return(mx.internal.onnx.out(ctx, pool(x, p$b, "valid")))
    if (all(ceiling((xsp + 2 * p$b - k) / s) + 1 == n)) return(mx.internal.onnx.out(ctx, pool(x, p$b, "full")))
  }
  # Explicit padding so that exactly n windows fit.
  e2 <- pmax((n - 1) * s + k - xsp - p$b, 0)
  if (type == "avg" && cip && any(e2 > p$e))
    mx.internal.onnx.fail(ctx$node, "ceil_mode with count_include_pad and windows past the padding is not supported")
  if (all(p$b == e2)) return(mx.internal.onnx.out(ctx, pool(x, p$b, "valid")))
  if (type == "max") {
    y <- pool(mx.internal.onnx.pad.sym(ctx, x, p$b, e2, -Inf), rep(0, nsp), "valid")
  } else if (cip) {
    y <- pool(mx.internal.onnx.pad.sym(ctx, x, p$b, e2, 0), rep(0, nsp), "valid")
  } else {
    num <- pool(mx.internal.onnx.pad.sym(ctx, x, p$b, e2, 0), rep(0, nsp), "valid", "sum", "sum")
    ones <- mx.internal.onnx.op(ctx, "ones_like", list(x), list(), "ones")
    den <- pool(mx.internal.onnx.pad.sym(ctx, ones, p$b, e2, 0, "pad_ones"), rep(0, nsp), "valid", "count", "sum")
    y <- mx.internal.onnx.op(ctx, "elemwise_div", list(num, den))
  }
  mx.internal.onnx.out(ctx, y)
}

mx.internal.onnx.h.globalpool <- function(type) function(ctx) {
  x <- mx.internal.onnx.S(ctx, 1)
  xs <- mx.internal.onnx.shp(ctx, 1)
  nsp <- if (is.null(xs)) 2 else length(xs) - 2
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Pooling", list(x),
    list(kernel = mx.internal.onnx.tuple(rep(1, nsp)), pool_type = type, global_pool = TRUE)))
}

mx.internal.onnx.h.batchnorm <- function(ctx) {
  if (mx.internal.onnx.a(ctx, "training_mode", 0) != 0)
    mx.internal.onnx.fail(ctx$node, "training_mode = 1 is not supported (export the model in eval mode)")
  if (mx.internal.onnx.a(ctx, "spatial", 1) != 1)
    mx.internal.onnx.fail(ctx$node, "spatial = 0 is not supported")
  eps <- mx.internal.onnx.a(ctx, "epsilon", 1e-5)
  mom <- mx.internal.onnx.a(ctx, "momentum", 0.9)
  out <- mx.internal.onnx.op(ctx, "BatchNorm",
    list(data = mx.internal.onnx.S(ctx, 1), gamma = mx.internal.onnx.S(ctx, 2), beta = mx.internal.onnx.S(ctx, 3),
         moving_mean = mx.internal.onnx.S(ctx, 4, aux = TRUE), moving_var = mx.internal.onnx.S(ctx, 5, aux = TRUE)),
    list(eps = mx.internal.onnx.num(eps), momentum = mx.internal.onnx.num(mom), fix_gamma = FALSE))
  mx.internal.onnx.out(ctx, out)
}

mx.internal.onnx.h.gemm <- function(ctx) {
  st <- ctx$st
  alpha <- mx.internal.onnx.a(ctx, "alpha", 1)
  beta <- mx.internal.onnx.a(ctx, "beta", 1)
  ta <- mx.internal.onnx.a(ctx, "transA", 0) != 0
  tb <- mx.internal.onnx.a(ctx, "transB", 0) != 0
  A <- mx.internal.onnx.S(ctx, 1)
  if (ta) A <- mx.internal.onnx.op(ctx, "transpose", list(A), list(), "transA")
  bs <- mx.internal.onnx.shp(ctx, 2)
  if (is.null(bs) || length(bs) != 2) mx.internal.onnx.fail(ctx$node, "B must be a matrix of known shape")
  N <- if (tb) bs[[1]] else bs[[2]]
  Bc <- mx.internal.onnx.C(ctx, 2)
  post.scale <- 1
  if (!is.null(Bc)) {
    if (!tb || alpha != 1) {
      W <- matrix(Bc$values, nrow = bs[[2]]) # R matrix (cols = C rows): element [j, i] = B[i, j]
      W <- if (tb) W else t(W)               # now W[k, n] holds (N x K) in C order
      w <- mx.internal.onnx.new.const(st, paste0(ctx$name, "_weight"), c(N, length(Bc$values) / N), as.vector(W) * alpha)
    } else {
      w <- mx.internal.onnx.S(ctx, 2)
    }
  } else {
    w <- mx.internal.onnx.S(ctx, 2)
    if (!tb) w <- mx.internal.onnx.op(ctx, "transpose", list(w), list(), "transB")
    post.scale <- alpha
  }
  bias <- NULL
  post.add <- NULL
  cn <- mx.internal.onnx.in(ctx, 3)
  if (!is.null(cn) && beta != 0) {
    Cc <- mx.internal.onnx.C(ctx, 3)
    if (!is.null(Cc) && post.scale == 1 && (length(Cc$values) == 1 ||
        (length(Cc$values) == N && length(Cc$dims) <= 2 && prod(Cc$dims) == N && (length(Cc$dims) < 2 || Cc$dims[[1]] == 1)))) {
      vals <- rep(Cc$values * beta, length.out = N)
      bias <- if (beta == 1 && length(Cc$dims) == 1 && length(Cc$values) == N) mx.internal.onnx.S(ctx, 3)
              else mx.internal.onnx.new.const(st, paste0(ctx$name, "_bias"), N, vals)
    } else if (!is.null(Cc)) {
      post.add <- if (beta == 1) mx.internal.onnx.S(ctx, 3)
                  else mx.internal.onnx.new.const(st, paste0(ctx$name, "_c"), Cc$dims, Cc$values * beta)
    } else {
      post.add <- mx.internal.onnx.S(ctx, 3)
      if (beta != 1) post.add <- mx.internal.onnx.op(ctx, "_mul_scalar", list(post.add),
                                                      list(scalar = mx.internal.onnx.num(beta)), "beta")
    }
  }
  last <- post.scale == 1 && is.null(post.add)
  y <- mx.internal.onnx.op(ctx, "FullyConnected", list(data = A, weight = w, bias = bias),
                           list(num_hidden = N, no_bias = is.null(bias), flatten = TRUE), if (!last) "fc")
  if (post.scale != 1)
    y <- mx.internal.onnx.op(ctx, "_mul_scalar", list(y), list(scalar = mx.internal.onnx.num(post.scale)),
                             if (!is.null(post.add)) "alpha")
  if (!is.null(post.add)) y <- mx.internal.onnx.op(ctx, "broadcast_add", list(y, post.add))
  mx.internal.onnx.out(ctx, y)
}

mx.internal.onnx.h.matmul <- function(ctx) {
  st <- ctx$st
  as <- mx.internal.onnx.need.shape(ctx, 1, "MatMul needs the ranks of its inputs")
  bs <- mx.internal.onnx.need.shape(ctx, 2, "MatMul needs the ranks of its inputs")
  ra <- length(as)
  rb <- length(bs)
  if (ra < 2 || rb < 2) mx.internal.onnx.fail(ctx$node, "1-D operands are not supported")
  A <- mx.internal.onnx.S(ctx, 1)
  if (rb == 2) {
    N <- bs[[2]]
    Bc <- mx.internal.onnx.C(ctx, 2)
    if (ra == 2 && is.null(Bc))
      return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "dot", list(A, mx.internal.onnx.S(ctx, 2)))))
    w <- if (!is.null(Bc)) {
      mx.internal.onnx.new.const(st, paste0(ctx$name, "_weight"), c(N, bs[[1]]), as.vector(t(matrix(Bc$values, nrow = N))))
    } else {
      mx.internal.onnx.op(ctx, "transpose", list(mx.internal.onnx.S(ctx, 2)), list(), "transB")
    }
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "FullyConnected", list(data = A, weight = w),
      list(num_hidden = N, no_bias = TRUE, flatten = FALSE))))
  }
  if (ra != rb || any(as[seq_len(ra - 2)] != bs[seq_len(rb - 2)]))
    mx.internal.onnx.fail(ctx$node, "MatMul of shapes (", paste(as, collapse = ", "), ") and (",
                          paste(bs, collapse = ", "), ") needs broadcasting, which is not supported")
  B <- mx.internal.onnx.S(ctx, 2)
  if (ra == 3) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "batch_dot", list(A, B))))
  lead <- as[seq_len(ra - 2)]
  M <- as[[ra - 1]]; K <- as[[ra]]; N <- bs[[rb]]
  a3 <- mx.internal.onnx.op(ctx, "Reshape", list(A), list(shape = mx.internal.onnx.tuple(c(-1, M, K))), "a3")
  b3 <- mx.internal.onnx.op(ctx, "Reshape", list(B), list(shape = mx.internal.onnx.tuple(c(-1, K, N))), "b3")
  y <- mx.internal.onnx.op(ctx, "batch_dot", list(a3, b3), list(), "bdot")
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Reshape", list(y),
                                                list(shape = mx.internal.onnx.tuple(c(-1, lead[-1], M, N)))))
}

mx.internal.onnx.binary.ops <- list(
  Add = c("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
  Sub = c("elemwise_sub", "broadcast_sub", "_minus_scalar", "_rminus_scalar"),
  Mul = c("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
  Div = c("elemwise_div", "broadcast_div", "_div_scalar", "_rdiv_scalar"),
  Max = c("_maximum", "broadcast_maximum", "_maximum_scalar", "_maximum_scalar"),
  Min = c("_minimum", "broadcast_minimum", "_minimum_scalar", "_minimum_scalar"),
  Pow = c("_power", "broadcast_power", "_power_scalar", "_rpower_scalar"))

mx.internal.onnx.binary.fun <- list(Add = `+`, Sub = `-`, Mul = `*`, Div = `/`, Max = pmax, Min = pmin, Pow = `^`)

mx.internal.onnx.h.binary <- function(op) function(ctx) {
  ops <- mx.internal.onnx.binary.ops[[op]]
  if (!is.null(mx.internal.onnx.a(ctx, "broadcast")) && mx.internal.onnx.a(ctx, "axis", -1) != -1)
    mx.internal.onnx.fail(ctx$node, "legacy broadcasting with an axis is not supported")
  if (length(ctx$node$input) != 2) mx.internal.onnx.fail(ctx$node, "needs 2 inputs")
  ca <- mx.internal.onnx.C(ctx, 1)
  cb <- mx.internal.onnx.C(ctx, 2)
  if (!is.null(ca) && !is.null(cb)) {
    r <- mx.internal.onnx.bcast(ca, cb, mx.internal.onnx.binary.fun[[op]])
    if (is.null(r)) mx.internal.onnx.fail(ctx$node, "the constant operands do not broadcast")
    if (op == "Div" && ca$dtype %in% c(2:7, 12:13)) r$values <- trunc(r$values)
    return(mx.internal.onnx.out(ctx, const = r))
  }
  sa <- mx.internal.onnx.shp(ctx, 1)
  sb <- mx.internal.onnx.shp(ctx, 2)
  scalar <- function(c, other) !is.null(c) && length(c$values) == 1 && !is.null(other) && length(c$dims) <= length(other)
  if (scalar(cb, sa))
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, ops[[3]], list(mx.internal.onnx.S(ctx, 1)),
                                                         list(scalar = mx.internal.onnx.num(cb$values)))))
  if (scalar(ca, sb))
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, ops[[4]], list(mx.internal.onnx.S(ctx, 2)),
                                                         list(scalar = mx.internal.onnx.num(ca$values)))))
  same <- is.null(ca) && is.null(cb) && !is.null(sa) && !is.null(sb) && identical(sa, sb)
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, if (same) ops[[1]] else ops[[2]],
                                                list(mx.internal.onnx.S(ctx, 1), mx.internal.onnx.S(ctx, 2))))
}

# Max / Min of one, two or more inputs.
mx.internal.onnx.h.variadic <- function(op) function(ctx) {
  ins <- which(nzchar(ctx$node$input))
  if (!length(ins)) mx.internal.onnx.fail(ctx$node, "needs at least one input")
  if (length(ins) == 2) return(mx.internal.onnx.h.binary(op)(ctx))
  if (length(ins) == 1) {
    c <- mx.internal.onnx.C(ctx, 1)
    if (!is.null(c)) return(mx.internal.onnx.out(ctx, const = c))
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", list(mx.internal.onnx.S(ctx, 1)))))
  }
  ops <- mx.internal.onnx.binary.ops[[op]]
  y <- mx.internal.onnx.S(ctx, ins[[1]])
  for (k in 2:length(ins))
    y <- mx.internal.onnx.op(ctx, ops[[2]], list(y, mx.internal.onnx.S(ctx, ins[[k]])), list(),
                             if (k < length(ins)) paste0("arg", k))
  mx.internal.onnx.out(ctx, y)
}

mx.internal.onnx.h.sum <- function(ctx) {
  ins <- ctx$node$input[nzchar(ctx$node$input)]
  if (!length(ins)) mx.internal.onnx.fail(ctx$node, "needs at least one input")
  syms <- lapply(seq_along(ins), function(i) mx.internal.onnx.S(ctx, i))
  if (length(syms) == 1) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", syms)))
  shapes <- lapply(seq_along(ins), function(i) mx.internal.onnx.shp(ctx, i))
  if (any(vapply(shapes, is.null, TRUE)) || length(unique(shapes)) != 1) {
    y <- syms[[1]]
    for (i in 2:length(syms))
      y <- mx.internal.onnx.op(ctx, "broadcast_add", list(y, syms[[i]]), list(), if (i < length(syms)) paste0("sum", i))
    return(mx.internal.onnx.out(ctx, y))
  }
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "add_n", syms, list(num_args = length(syms))))
}

mx.internal.onnx.h.unary <- function(op, params = list()) function(ctx) {
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, op, list(mx.internal.onnx.S(ctx, 1)), params))
}

mx.internal.onnx.h.leakyrelu <- function(ctx) {
  a <- mx.internal.onnx.a(ctx, "alpha", 0.01)
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "LeakyReLU", list(mx.internal.onnx.S(ctx, 1)),
                                                list(act_type = "leaky", slope = mx.internal.onnx.num(a))))
}

mx.internal.onnx.h.elu <- function(ctx) {
  a <- mx.internal.onnx.a(ctx, "alpha", 1)
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "LeakyReLU", list(mx.internal.onnx.S(ctx, 1)),
                                                list(act_type = "elu", slope = mx.internal.onnx.num(a))))
}

mx.internal.onnx.h.prelu <- function(ctx) {
  sc <- mx.internal.onnx.C(ctx, 2)
  xs <- mx.internal.onnx.shp(ctx, 1)
  ss <- mx.internal.onnx.shp(ctx, 2)
  per.channel <- !is.null(sc) && (length(sc$values) == 1 || (!is.null(xs) && length(xs) >= 2 &&
    length(sc$dims) == length(xs) - 1 && sc$dims[[1]] == xs[[2]] && all(sc$dims[-1] == 1)) ||
    (!is.null(xs) && length(xs) == 2 && length(sc$dims) == 1 && sc$dims[[1]] == xs[[2]]))
  if (!per.channel) {
    # general broadcasting slope: relu(x) + slope * min(x, 0)
    x <- mx.internal.onnx.S(ctx, 1)
    pos <- mx.internal.onnx.op(ctx, "relu", list(x), list(), "pos")
    neg <- mx.internal.onnx.op(ctx, "_minimum_scalar", list(x), list(scalar = "0"), "neg")
    sneg <- mx.internal.onnx.op(ctx, "broadcast_mul", list(neg, mx.internal.onnx.S(ctx, 2)), list(), "scaled")
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "broadcast_add", list(pos, sneg))))
  }
  if (length(sc$values) == 1) {
    ss <- mx.internal.onnx.shp(ctx, 1)
    if (is.null(ss) || length(ss) < 2) mx.internal.onnx.fail(ctx$node, "the input's channel count is unknown")
    vals <- rep(sc$values, ss[[2]])
  } else {
    vals <- sc$values
  }
  g <- mx.internal.onnx.new.const(ctx$st, paste0(ctx$name, "_gamma"), length(vals), vals)
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "LeakyReLU", list(data = mx.internal.onnx.S(ctx, 1), gamma = g),
                                                list(act_type = "prelu")))
}

mx.internal.onnx.h.flatten <- function(ctx) {
  axis <- mx.internal.onnx.a(ctx, "axis", 1)
  c <- mx.internal.onnx.C(ctx, 1)
  s <- mx.internal.onnx.shp(ctx, 1)
  if (axis < 0) {
    if (is.null(s)) mx.internal.onnx.fail(ctx$node, "a negative axis needs the input's rank")
    axis <- axis + length(s)
  }
  if (!is.null(c)) {
    c$dims <- c(prod(c$dims[seq_len(axis)]), prod(c$dims[-seq_len(axis)]))
    return(mx.internal.onnx.out(ctx, const = c))
  }
  x <- mx.internal.onnx.S(ctx, 1)
  if (axis == 1) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Flatten", list(x))))
  shape <- if (axis == 0) c(1, -1) else {
    if (is.null(s)) mx.internal.onnx.fail(ctx$node, "axis ", axis, " needs the input's shape")
    if (axis > length(s)) mx.internal.onnx.fail(ctx$node, "axis ", axis, " is out of range")
    c(-1, prod(s[-seq_len(axis)]))
  }
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Reshape", list(x), list(shape = mx.internal.onnx.tuple(shape))))
}

mx.internal.onnx.h.reshape <- function(ctx) {
  shape <- if (ctx$st$opset < 5) mx.internal.onnx.a(ctx, "shape") else mx.internal.onnx.const.ints(ctx, 2, "the shape")
  if (is.null(shape)) mx.internal.onnx.fail(ctx$node, "the target shape is missing")
  allowzero <- mx.internal.onnx.a(ctx, "allowzero", 0) != 0
  if (allowzero && any(shape == 0)) mx.internal.onnx.fail(ctx$node, "allowzero = 1 with a 0 in the shape is not supported")
  if (sum(shape == -1) > 1 || any(shape < -1)) mx.internal.onnx.fail(ctx$node, "invalid shape (", paste(shape, collapse = ", "), ")")
  c <- mx.internal.onnx.C(ctx, 1)
  if (!is.null(c)) {
    d <- shape
    d[d == 0] <- c$dims[which(d == 0)]
    if (any(d == -1)) d[d == -1] <- length(c$values) / prod(d[d != -1])
    if (prod(d) != length(c$values)) mx.internal.onnx.fail(ctx$node, "cannot reshape the constant")
    c$dims <- d
    return(mx.internal.onnx.out(ctx, const = c))
  }
  if (!length(shape)) mx.internal.onnx.fail(ctx$node, "reshaping to a 0-d tensor is not supported")
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Reshape", list(mx.internal.onnx.S(ctx, 1)),
                                                list(shape = mx.internal.onnx.tuple(shape))))
}

mx.internal.onnx.h.transpose <- function(ctx) {
  perm <- mx.internal.onnx.a(ctx, "perm")
  c <- mx.internal.onnx.C(ctx, 1)
  if (!is.null(c)) {
    r <- length(c$dims)
    if (is.null(perm)) perm <- rev(seq_len(r) - 1)
    if (r > 1) {
      a <- aperm(array(c$values, rev(c$dims)), r - rev(perm))
      c$values <- as.vector(a)
      c$dims <- c$dims[perm + 1]
    }
    return(mx.internal.onnx.out(ctx, const = c))
  }
  params <- if (is.null(perm)) list() else list(axes = mx.internal.onnx.tuple(perm))
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "transpose", list(mx.internal.onnx.S(ctx, 1)), params))
}

mx.internal.onnx.h.concat <- function(ctx) {
  axis <- mx.internal.onnx.a(ctx, "axis", if (ctx$st$opset < 4) 1 else NULL)
  if (is.null(axis)) mx.internal.onnx.fail(ctx$node, "axis is required")
  ins <- which(nzchar(ctx$node$input))
  syms <- lapply(ins, function(i) mx.internal.onnx.S(ctx, i))
  if (length(syms) == 1) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", syms)))
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Concat", syms, list(num_args = length(syms), dim = axis)))
}

mx.internal.onnx.h.dropout <- function(ctx) {
  tm <- mx.internal.onnx.C(ctx, 3)
  if (!is.null(mx.internal.onnx.in(ctx, 3)) && (is.null(tm) || any(tm$values != 0)))
    mx.internal.onnx.fail(ctx$node, "training_mode must be a constant false")
  if (isTRUE(mx.internal.onnx.a(ctx, "is_test", 1) == 0))
    mx.internal.onnx.fail(ctx$node, "is_test = 0 (training mode) is not supported")
  c <- mx.internal.onnx.C(ctx, 1)
  if (!is.null(c)) return(mx.internal.onnx.out(ctx, const = c))
  r <- mx.internal.onnx.C(ctx, 2)
  p <- if (!is.null(r)) r$values[[1]] else mx.internal.onnx.a(ctx, "ratio", 0.5)
  x <- mx.internal.onnx.S(ctx, 1)
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Dropout", list(x), list(p = mx.internal.onnx.num(p))))
  # the mask of an inference-mode dropout keeps everything
  if (length(ctx$node$output) > 1 && nzchar(ctx$node$output[[2]]))
    mx.internal.onnx.set(ctx$st, ctx$node$output[[2]], mx.internal.onnx.op(ctx, "ones_like", list(x), list(), "mask"))
}

mx.internal.onnx.h.softmax <- function(op) function(ctx) {
  new <- ctx$st$opset >= 13
  axis <- mx.internal.onnx.a(ctx, "axis", if (new) -1 else 1)
  x <- mx.internal.onnx.S(ctx, 1)
  if (new) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, op, list(x), list(axis = axis))))
  s <- mx.internal.onnx.shp(ctx, 1)
  if (is.null(s)) {
    if (axis == -1) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, op, list(x), list(axis = -1))))
    mx.internal.onnx.fail(ctx$node, "axis ", axis, " before opset 13 needs the input's rank")
  }
  r <- length(s)
  if (axis < 0) axis <- axis + r
  if (axis == r - 1) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, op, list(x), list(axis = -1))))
  # opset < 13: softmax of the input coerced to 2-D at axis
  if (axis == 0 && ctx$st$symbolic)
    mx.internal.onnx.fail(ctx$node, "axis 0 before opset 13 on a model with a dynamic batch is not supported")
  x2 <- mx.internal.onnx.op(ctx, "Reshape", list(x), list(shape = mx.internal.onnx.tuple(
    if (axis == 0) c(1, -1) else c(-1, prod(s[-seq_len(axis)])))), "2d")
  y <- mx.internal.onnx.op(ctx, op, list(x2), list(axis = -1), "sm")
  back <- s
  if (axis >= 1) back[[1]] <- -1
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Reshape", list(y), list(shape = mx.internal.onnx.tuple(back))))
}

mx.internal.onnx.h.clip <- function(ctx) {
  x <- mx.internal.onnx.S(ctx, 1)
  if (ctx$st$opset < 11) {
    lo <- mx.internal.onnx.a(ctx, "min", -Inf)
    hi <- mx.internal.onnx.a(ctx, "max", Inf)
  } else {
    lo.n <- mx.internal.onnx.in(ctx, 2)
    hi.n <- mx.internal.onnx.in(ctx, 3)
    lc <- mx.internal.onnx.C(ctx, 2)
    hc <- mx.internal.onnx.C(ctx, 3)
    if ((!is.null(lo.n) && is.null(lc)) || (!is.null(hi.n) && is.null(hc))) {
      y <- x
      if (!is.null(lo.n)) y <- mx.internal.onnx.op(ctx, "broadcast_maximum", list(y, mx.internal.onnx.S(ctx, 2)), list(),
                                                   if (!is.null(hi.n)) "min")
      if (!is.null(hi.n)) y <- mx.internal.onnx.op(ctx, "broadcast_minimum", list(y, mx.internal.onnx.S(ctx, 3)))
      return(mx.internal.onnx.out(ctx, y))
    }
    lo <- if (is.null(lc)) -Inf else lc$values[[1]]
    hi <- if (is.null(hc)) Inf else hc$values[[1]]
  }
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "clip", list(x),
                                                list(a_min = mx.internal.onnx.num(lo), a_max = mx.internal.onnx.num(hi))))
}

mx.internal.onnx.h.lrn <- function(ctx) {
  size <- mx.internal.onnx.a(ctx, "size")
  if (is.null(size)) mx.internal.onnx.fail(ctx$node, "size is required")
  if (size %% 2 != 1) mx.internal.onnx.fail(ctx$node, "an even size (", size, ") is not supported")
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "LRN", list(mx.internal.onnx.S(ctx, 1)),
    list(nsize = size, alpha = mx.internal.onnx.num(mx.internal.onnx.a(ctx, "alpha", 1e-4)),
         beta = mx.internal.onnx.num(mx.internal.onnx.a(ctx, "beta", 0.75)),
         knorm = mx.internal.onnx.num(mx.internal.onnx.a(ctx, "bias", 1)))))
}

mx.internal.onnx.h.pad <- function(ctx) {
  mode <- mx.internal.onnx.a(ctx, "mode", "constant")
  if (!mode %in% c("constant", "reflect", "edge")) mx.internal.onnx.fail(ctx$node, "mode '", mode, "' is not supported")
  if (ctx$st$opset < 11) {
    pads <- mx.internal.onnx.a(ctx, if (ctx$st$opset < 2) "paddings" else "pads")
    value <- mx.internal.onnx.a(ctx, "value", 0)
  } else {
    pads <- mx.internal.onnx.const.ints(ctx, 2, "pads")
    cv <- mx.internal.onnx.in(ctx, 3)
    value <- 0
    if (!is.null(cv)) {
      c <- mx.internal.onnx.C(ctx, 3)
      if (is.null(c)) mx.internal.onnx.fail(ctx$node, "constant_value must be a constant")
      value <- c$values[[1]]
    }
    if (!is.null(mx.internal.onnx.in(ctx, 4))) mx.internal.onnx.fail(ctx$node, "the axes input is not supported")
  }
  if (is.null(pads)) mx.internal.onnx.fail(ctx$node, "pads is missing")
  r <- length(pads) / 2
  if (any(pads < 0)) mx.internal.onnx.fail(ctx$node, "negative pads (cropping) are not supported")
  x <- mx.internal.onnx.S(ctx, 1)
  if (all(pads == 0)) return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", list(x))))
  pw <- as.vector(rbind(pads[seq_len(r)], pads[r + seq_len(r)]))
  if (!r %in% 4:5 || any(pw[1:4] != 0))
    mx.internal.onnx.fail(ctx$node, "only padding of the last 2 or 3 dims of a 4-D or 5-D tensor is supported (pads ",
                          paste(pads, collapse = ", "), ")")
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "Pad", list(x),
    list(mode = mode, pad_width = mx.internal.onnx.tuple(pw), constant_value = mx.internal.onnx.num(value))))
}

mx.internal.onnx.h.identity <- function(ctx) {
  c <- mx.internal.onnx.C(ctx, 1)
  if (!is.null(c)) return(mx.internal.onnx.out(ctx, const = c))
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", list(mx.internal.onnx.S(ctx, 1))))
}

mx.internal.onnx.h.constant <- function(ctx) {
  a <- function(n) ctx$attrs[[n]]
  t <- if (!is.null(a("value"))) a("value")
       else if (!is.null(a("value_float"))) list(dims = numeric(0), values = a("value_float"), dtype = 1L)
       else if (!is.null(a("value_floats"))) list(dims = length(a("value_floats")), values = a("value_floats"), dtype = 1L)
       else if (!is.null(a("value_int"))) list(dims = numeric(0), values = a("value_int"), dtype = 7L)
       else if (!is.null(a("value_ints"))) list(dims = length(a("value_ints")), values = a("value_ints"), dtype = 7L)
       else mx.internal.onnx.fail(ctx$node, "only tensor, float(s) and int(s) constants are supported")
  mx.internal.onnx.out(ctx, const = t)
}

# ---- constant folding and shape-computation ops ----
# PyTorch computes pads and shapes with small subgraphs of constants
# (ConstantOfShape, Concat, Slice, Cast, ...); they are evaluated here.

mx.internal.onnx.all.const <- function(ctx) {
  ins <- which(nzchar(ctx$node$input))
  all(vapply(ins, function(i) !is.null(mx.internal.onnx.C(ctx, i)), TRUE))
}

mx.internal.onnx.h.constantofshape <- function(ctx) {
  shape <- mx.internal.onnx.const.ints(ctx, 1, "the shape")
  v <- mx.internal.onnx.a(ctx, "value", list(values = 0, dtype = 1L))
  if (length(v$values) != 1) mx.internal.onnx.fail(ctx$node, "value must have one element")
  if (any(shape < 0) || prod(shape) > 2^31) mx.internal.onnx.fail(ctx$node, "invalid or too large shape")
  mx.internal.onnx.out(ctx, const = list(dims = shape, values = rep(v$values, prod(shape)), dtype = v$dtype))
}

mx.internal.onnx.h.cast <- function(ctx) {
  to <- mx.internal.onnx.a(ctx, "to")
  if (is.null(to)) mx.internal.onnx.fail(ctx$node, "'to' is required")
  c <- mx.internal.onnx.C(ctx, 1)
  if (!is.null(c)) {
    v <- c$values
    if (to %in% c(2:7, 12:13)) v <- trunc(v)
    if (to == 9) v <- as.numeric(v != 0)
    if (to == 1) v <- readBin(writeBin(v, raw(), size = 4), "double", n = length(v), size = 4)
    c$values <- v
    c$dtype <- as.integer(to)
    return(mx.internal.onnx.out(ctx, const = c))
  }
  if (!to %in% c(1, 10, 11))
    mx.internal.onnx.fail(ctx$node, "casting a computed tensor to ", mx.internal.onnx.dtype.name(to), " is not supported")
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", list(mx.internal.onnx.S(ctx, 1))))
}

mx.internal.onnx.concat.const <- function(cs, axis) {
  r <- length(cs[[1]]$dims)
  if (axis < 0) axis <- axis + r
  outer <- prod(cs[[1]]$dims[seq_len(axis)])
  blocks <- lapply(cs, function(c) matrix(c$values, ncol = outer))
  dims <- cs[[1]]$dims
  dims[[axis + 1]] <- sum(vapply(cs, function(c) c$dims[[axis + 1]], 0))
  list(dims = dims, values = as.vector(do.call(rbind, blocks)), dtype = cs[[1]]$dtype)
}

# ONNX Slice bounds for one axis of size n -> 0-based indices.
mx.internal.onnx.slice.idx <- function(n, start, end, step) {
  if (step == 0) stop("step 0")
  if (start < 0) start <- start + n
  if (end < 0) end <- end + n
  if (step > 0) {
    start <- min(max(start, 0), n)
    end <- min(max(end, 0), n)
    if (start >= end) return(numeric(0))
    seq(start, end - 1, by = step)
  } else {
    start <- min(max(start, 0), n - 1)
    end <- min(max(end, -1), n - 1)
    if (start <= end) return(numeric(0))
    seq(start, end + 1, by = step)
  }
}

mx.internal.onnx.h.slice <- function(ctx) {
  if (ctx$st$opset < 10) {
    starts <- mx.internal.onnx.a(ctx, "starts")
    ends <- mx.internal.onnx.a(ctx, "ends")
    axes <- mx.internal.onnx.a(ctx, "axes")
    steps <- NULL
  } else {
    starts <- mx.internal.onnx.const.ints(ctx, 2, "starts")
    ends <- mx.internal.onnx.const.ints(ctx, 3, "ends")
    axes <- if (!is.null(mx.internal.onnx.in(ctx, 4))) mx.internal.onnx.const.ints(ctx, 4, "axes")
    steps <- if (!is.null(mx.internal.onnx.in(ctx, 5))) mx.internal.onnx.const.ints(ctx, 5, "steps")
  }
  if (is.null(axes)) axes <- seq_along(starts) - 1
  if (is.null(steps)) steps <- rep(1, length(starts))
  if (any(steps == 0)) mx.internal.onnx.fail(ctx$node, "a step of 0 is invalid")
  c <- mx.internal.onnx.C(ctx, 1)
  s <- if (is.null(c)) mx.internal.onnx.need.shape(ctx, 1, "Slice needs it") else c$dims
  r <- length(s)
  axes <- ifelse(axes < 0, axes + r, axes)
  if (!is.null(c)) {
    idx <- lapply(rev(seq_len(r) - 1), function(a) {
      k <- match(a, axes)
      if (is.na(k)) return(seq_len(s[[a + 1]]))
      mx.internal.onnx.slice.idx(s[[a + 1]], starts[[k]], ends[[k]], steps[[k]]) + 1
    })
    arr <- array(c$values, dim = if (r) rev(s) else 1)
    if (r) arr <- do.call(`[`, c(list(arr), idx, list(drop = FALSE)))
    c$values <- as.vector(arr)
    c$dims <- if (r) rev(dim(arr)) else numeric(0)
    return(mx.internal.onnx.out(ctx, const = c))
  }
  if (any(steps != 1)) mx.internal.onnx.fail(ctx$node, "steps other than 1 are only supported on constants")
  y <- mx.internal.onnx.S(ctx, 1)
  for (k in seq_along(axes)) {
    n <- s[[axes[[k]] + 1]]
    if (axes[[k]] == 0 && ctx$st$symbolic) {
      if (starts[[k]] == 0 && ends[[k]] >= 2^31 - 1) next
      mx.internal.onnx.fail(ctx$node, "slicing the batch axis of a model with a dynamic batch is not supported")
    }
    ix <- mx.internal.onnx.slice.idx(n, starts[[k]], ends[[k]], 1)
    if (!length(ix)) mx.internal.onnx.fail(ctx$node, "the slice is empty")
    if (ix[[1]] == 0 && length(ix) == n) next
    y <- mx.internal.onnx.op(ctx, "slice_axis", list(y), list(axis = axes[[k]], begin = ix[[1]], end = ix[[length(ix)]] + 1),
                             paste0("axis", axes[[k]]))
  }
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "_copy", list(y)))
}

mx.internal.onnx.axes.arg <- function(ctx, what) {
  if (ctx$st$opset < 13) mx.internal.onnx.a(ctx, "axes")
  else if (!is.null(mx.internal.onnx.in(ctx, 2))) mx.internal.onnx.const.ints(ctx, 2, what)
}

mx.internal.onnx.h.unsqueeze <- function(ctx) {
  axes <- mx.internal.onnx.axes.arg(ctx, "axes")
  if (is.null(axes)) mx.internal.onnx.fail(ctx$node, "axes is required")
  c <- mx.internal.onnx.C(ctx, 1)
  s <- if (is.null(c)) mx.internal.onnx.shp(ctx, 1) else c$dims
  if (is.null(s)) mx.internal.onnx.fail(ctx$node, "the input's rank is unknown")
  r <- length(s) + length(axes)
  axes <- sort(ifelse(axes < 0, axes + r, axes))
  if (!is.null(c)) {
    d <- numeric(r)
    d[axes + 1] <- 1
    d[-(axes + 1)] <- s
    c$dims <- d
    return(mx.internal.onnx.out(ctx, const = c))
  }
  y <- mx.internal.onnx.S(ctx, 1)
  for (k in seq_along(axes))
    y <- mx.internal.onnx.op(ctx, "expand_dims", list(y), list(axis = axes[[k]]),
                             if (k < length(axes)) paste0("axis", axes[[k]]))
  mx.internal.onnx.out(ctx, y)
}

mx.internal.onnx.h.squeeze <- function(ctx) {
  axes <- mx.internal.onnx.axes.arg(ctx, "axes")
  c <- mx.internal.onnx.C(ctx, 1)
  s <- if (is.null(c)) mx.internal.onnx.shp(ctx, 1) else c$dims
  if (is.null(s)) mx.internal.onnx.fail(ctx$node, "the input's shape is unknown")
  if (is.null(axes)) {
    if (is.null(c) && ctx$st$symbolic)
      mx.internal.onnx.fail(ctx$node, "Squeeze without axes on a model with a dynamic batch is ambiguous")
    axes <- which(s == 1) - 1
  }
  axes <- ifelse(axes < 0, axes + length(s), axes)
  if (any(s[axes + 1] != 1)) mx.internal.onnx.fail(ctx$node, "cannot squeeze an axis whose size is not 1")
  if (!is.null(c)) {
    c$dims <- s[-(axes + 1)]
    return(mx.internal.onnx.out(ctx, const = c))
  }
  mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "squeeze", list(mx.internal.onnx.S(ctx, 1)),
                                                list(axis = mx.internal.onnx.tuple(axes))))
}

mx.internal.onnx.h.gather <- function(ctx) {
  d <- mx.internal.onnx.C(ctx, 1)
  ix <- mx.internal.onnx.C(ctx, 2)
  axis <- mx.internal.onnx.a(ctx, "axis", 0)
  if (is.null(ix)) mx.internal.onnx.fail(ctx$node, "the indices must be constant")
  if (is.null(d)) {
    s <- mx.internal.onnx.need.shape(ctx, 1, "Gather needs it")
    if (axis < 0) axis <- axis + length(s)
    if (axis == 0 && ctx$st$symbolic)
      mx.internal.onnx.fail(ctx$node, "Gather on the batch axis of a model with a dynamic batch is not supported")
    n <- s[[axis + 1]]
    k <- ifelse(ix$values < 0, ix$values + n, ix$values)
    if (any(k < 0 | k >= n)) mx.internal.onnx.fail(ctx$node, "an index is out of range")
    if (!length(ix$dims)) mx.internal.onnx.fail(ctx$node, "0-d indices on a computed tensor are not supported")
    iv <- mx.internal.onnx.new.const(ctx$st, paste0(ctx$name, "_indices"), ix$dims, k)
    return(mx.internal.onnx.out(ctx, mx.internal.onnx.op(ctx, "take", list(mx.internal.onnx.S(ctx, 1), iv),
                                                         list(axis = axis, mode = "clip"))))
  }
  r <- length(d$dims)
  if (axis < 0) axis <- axis + r
  n <- d$dims[[axis + 1]]
  k <- ifelse(ix$values < 0, ix$values + n, ix$values)
  if (any(k < 0 | k >= n)) mx.internal.onnx.fail(ctx$node, "an index is out of range")
  outer <- prod(d$dims[seq_len(axis)])
  inner <- prod(d$dims[-seq_len(axis + 1)])
  a <- array(d$values, c(inner, n, outer))[, k + 1, , drop = FALSE]
  mx.internal.onnx.out(ctx, const = list(dims = c(d$dims[seq_len(axis)], ix$dims, d$dims[-seq_len(axis + 1)]),
                                          values = as.vector(a), dtype = d$dtype))
}

mx.internal.onnx.h.shape <- function(ctx) {
  c <- mx.internal.onnx.C(ctx, 1)
  s <- if (is.null(c)) mx.internal.onnx.shp(ctx, 1) else c$dims
  if (is.null(s)) mx.internal.onnx.fail(ctx$node, "the input's shape is unknown")
  if (is.null(c) && ctx$st$symbolic)
    mx.internal.onnx.fail(ctx$node, "Shape of a tensor that depends on a symbolic (dynamic) input dimension ",
                          "is not supported; export the model with fixed input dims")
  r <- length(s)
  start <- mx.internal.onnx.a(ctx, "start", 0)
  end <- mx.internal.onnx.a(ctx, "end", r)
  if (start < 0) start <- start + r
  if (end < 0) end <- end + r
  start <- min(max(start, 0), r)
  end <- min(max(end, 0), r)
  v <- if (end > start) s[(start + 1):end] else numeric(0)
  mx.internal.onnx.out(ctx, const = list(dims = length(v), values = v, dtype = 7L))
}

mx.internal.onnx.h.concat.any <- function(ctx) {
  if (mx.internal.onnx.all.const(ctx)) {
    axis <- mx.internal.onnx.a(ctx, "axis", if (ctx$st$opset < 4) 1 else NULL)
    if (is.null(axis)) mx.internal.onnx.fail(ctx$node, "axis is required")
    cs <- lapply(which(nzchar(ctx$node$input)), function(i) mx.internal.onnx.C(ctx, i))
    return(mx.internal.onnx.out(ctx, const = mx.internal.onnx.concat.const(cs, axis)))
  }
  mx.internal.onnx.h.concat(ctx)
}

mx.internal.onnx.handlers <- local({
  h <- function(fun, attrs = character(), nout = 1) list(fun = fun, attrs = attrs, nout = nout)
  act <- function(t) h(mx.internal.onnx.h.unary("Activation", list(act_type = t)))
  conv.attrs <- c("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
  pool.attrs <- c("auto_pad", "ceil_mode", "kernel_shape", "pads", "strides", "dilations")
  bin <- function(op) h(mx.internal.onnx.h.binary(op), c("broadcast", "axis"))
  list(
    Conv = h(mx.internal.onnx.h.conv, conv.attrs),
    ConvTranspose = h(mx.internal.onnx.h.convtranspose, c(conv.attrs, "output_padding", "output_shape")),
    Relu = act("relu"), Tanh = act("tanh"), Sigmoid = act("sigmoid"), Softplus = act("softrelu"),
    Softsign = act("softsign"),
    LeakyRelu = h(mx.internal.onnx.h.leakyrelu, "alpha"),
    Elu = h(mx.internal.onnx.h.elu, "alpha"),
    PRelu = h(mx.internal.onnx.h.prelu),
    Exp = h(mx.internal.onnx.h.unary("exp")), Log = h(mx.internal.onnx.h.unary("log")),
    Sqrt = h(mx.internal.onnx.h.unary("sqrt")), Abs = h(mx.internal.onnx.h.unary("abs")),
    Neg = h(mx.internal.onnx.h.unary("negative")), Reciprocal = h(mx.internal.onnx.h.unary("reciprocal")),
    Floor = h(mx.internal.onnx.h.unary("floor")), Ceil = h(mx.internal.onnx.h.unary("ceil")),
    MaxPool = h(mx.internal.onnx.h.pool("max"), c(pool.attrs, "storage_order")),
    AveragePool = h(mx.internal.onnx.h.pool("avg"), c(pool.attrs, "count_include_pad")),
    GlobalAveragePool = h(mx.internal.onnx.h.globalpool("avg")),
    GlobalMaxPool = h(mx.internal.onnx.h.globalpool("max")),
    BatchNormalization = h(mx.internal.onnx.h.batchnorm, c("epsilon", "momentum", "spatial", "training_mode",
                                                             "is_test", "consumed_inputs")),
    Gemm = h(mx.internal.onnx.h.gemm, c("alpha", "beta", "transA", "transB", "broadcast")),
    MatMul = h(mx.internal.onnx.h.matmul),
    Add = bin("Add"), Sub = bin("Sub"), Mul = bin("Mul"), Div = bin("Div"),
    Max = h(mx.internal.onnx.h.variadic("Max")), Min = h(mx.internal.onnx.h.variadic("Min")),
    Pow = h(mx.internal.onnx.h.binary("Pow")),
    Sum = h(mx.internal.onnx.h.sum),
    Flatten = h(mx.internal.onnx.h.flatten, "axis"),
    Reshape = h(mx.internal.onnx.h.reshape, c("allowzero", "shape")),
    Transpose = h(mx.internal.onnx.h.transpose, "perm"),
    Concat = h(mx.internal.onnx.h.concat.any, "axis"),
    ConstantOfShape = h(mx.internal.onnx.h.constantofshape, "value"),
    Cast = h(mx.internal.onnx.h.cast, c("to", "saturate")),
    Slice = h(mx.internal.onnx.h.slice, c("starts", "ends", "axes")),
    Unsqueeze = h(mx.internal.onnx.h.unsqueeze, "axes"),
    Squeeze = h(mx.internal.onnx.h.squeeze, "axes"),
    Gather = h(mx.internal.onnx.h.gather, "axis"),
    Shape = h(mx.internal.onnx.h.shape, c("start", "end")),
    Dropout = h(mx.internal.onnx.h.dropout, c("ratio", "seed", "is_test"), nout = 2),
    Softmax = h(mx.internal.onnx.h.softmax("softmax"), "axis"),
    LogSoftmax = h(mx.internal.onnx.h.softmax("log_softmax"), "axis"),
    Clip = h(mx.internal.onnx.h.clip, c("min", "max")),
    LRN = h(mx.internal.onnx.h.lrn, c("alpha", "beta", "bias", "size")),
    Pad = h(mx.internal.onnx.h.pad, c("mode", "pads", "value", "paddings")),
    Identity = h(mx.internal.onnx.h.identity),
    Constant = h(mx.internal.onnx.h.constant, c("value", "value_float", "value_floats", "value_int", "value_ints",
                                                "sparse_value", "value_string", "value_strings")))
})

# Runs an imported model on named inputs (ONNX or symnet names; R dims) and
# returns every output as an R array (tests and multi-input models).
mx.internal.onnx.run <- function(model, inputs, ctx = mx.cpu()) {
  sym <- model$symbol
  map <- attr(model, "onnx.inputs")
  if (!is.null(map) && !is.null(names(inputs))) {
    k <- match(names(inputs), map)
    names(inputs)[!is.na(k)] <- names(map)[k[!is.na(k)]]
  }
  args <- arguments(sym)
  aux <- sym$auxiliary.states
  given <- lapply(inputs, function(x) if (is.null(dim(x))) length(x) else dim(x))
  inf <- NULL
  pick <- function(n, params) {
    if (!is.null(inputs[[n]])) return(mx.nd.array(inputs[[n]]))
    if (!is.null(params[[n]])) return(params[[n]])
    if (grepl("label$", n)) { # loss heads: labels do not matter for the outputs
      if (is.null(inf)) inf <<- do.call(mx.symbol.infer.shape, c(list(sym), given[names(given) %in% args]))
      if (!is.null(inf$arg.shapes[[n]])) return(mx.nd.zeros(inf$arg.shapes[[n]]))
    }
    stop("no value for '", n, "'", call. = FALSE)
  }
  arg.arrays <- stats::setNames(lapply(args, pick, model$arg.params), args)
  aux.arrays <- stats::setNames(lapply(aux, pick, model$aux.params), aux)
  ex <- mx.symbol.bind(sym, ctx, arg.arrays, aux.arrays, grad.reqs = "null")
  mx.exec.forward(ex, is.train = FALSE)
  lapply(ex$ref.outputs, as.array)
}

# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------

#' Export a model to ONNX
#'
#' Writes `model` as an ONNX model (opset 13, IR version 7): the graph with
#' one node per symnet operator (a few operators become two or three ONNX
#' nodes), the parameters as float32 initializers, and the inputs and
#' outputs with their shapes.  Loss heads become their inference form
#' (`SoftmaxOutput` a `Softmax`, `LogisticRegressionOutput` a `Sigmoid`,
#' `LinearRegressionOutput` an `Identity`) and their label inputs are
#' dropped.
#'
#' Exported operators: Convolution, Deconvolution, FullyConnected,
#' Activation, relu, sigmoid, tanh, LeakyReLU (leaky, elu, prelu, selu),
#' Pooling (max, avg, lp; global), BatchNorm, Flatten, Reshape, transpose,
#' Concat, Dropout, softmax, log_softmax, SoftmaxActivation, clip, LRN, Pad,
#' the element-wise and broadcasting arithmetic (add, sub, mul, div,
#' maximum, minimum, power, and their scalar forms), add_n, dot, batch_dot,
#' exp, log, sqrt, abs, negative, reciprocal, floor, ceil, _copy, BlockGrad
#' and the loss outputs.  Others give an error naming the node.
#'
#' @param model An `MXFeedForwardModel`.
#' @param file The `.onnx` file to write.
#' @param input.shape R dims of the data input including the batch (last),
#'   e.g. `c(28, 28, 1, 1)`, or a named list of R dims for several inputs.
#' @param opset The ONNX opset to write; only 13 is supported.
#' @return `file`, invisibly.
#' @examples
#' \dontrun{
#' mx.onnx.export(model, "lenet.onnx", input.shape = c(28, 28, 1, 1))
#' }
#' @export
mx.onnx.export <- function(model, file, input.shape, opset = 13) {
  if (is.serialized(model)) model <- mx.unserialize(model)
  if (!inherits(model, "MXFeedForwardModel")) stop("model must be an MXFeedForwardModel", call. = FALSE)
  if (!identical(as.numeric(opset), 13)) stop("mx.onnx.export writes opset 13 only", call. = FALSE)
  if (missing(input.shape)) stop("input.shape is needed (R dims of the data input, batch last)", call. = FALSE)
  shapes <- if (is.list(input.shape)) input.shape else list(data = input.shape)
  if (is.null(names(shapes)) || any(!nzchar(names(shapes)))) stop("input.shape must be named", call. = FALSE)
  g <- mx.internal.onnx.export.graph(model, shapes)
  m <- list(ir_version = 7, producer_name = "symnet",
            producer_version = as.character(utils::packageVersion("symnet")),
            graph = g, opset_import = list(list(domain = "", version = 13)))
  raw <- mx.internal.pb.encode(m, mx.internal.onnx.schema(), "ModelProto")
  mx.internal.atomic.write(function(f) writeBin(raw, f), file)
  invisible(file)
}

mx.internal.onnx.export.graph <- function(model, shapes) {
  sym <- model$symbol
  nodes <- .Call(C_sym_nodes, sym)
  info <- mx.internal.op.info()
  known <- c(arguments(sym), sym$auxiliary.states)
  bad <- setdiff(names(shapes), known)
  if (length(bad)) stop("mx.onnx.export: the symbol has no input '", bad[[1]], "'", call. = FALSE)
  inf <- do.call(mx.symbol.infer.shape, c(list(internals(sym)), shapes))
  if (is.null(inf)) stop("mx.onnx.export: input.shape does not determine every shape in the graph", call. = FALSE)
  if (anyDuplicated(nodes$name)) stop("mx.onnx.export: node names must be unique", call. = FALSE)
  ex <- new.env(parent = emptyenv())
  ex$nodes <- list()
  ex$inits <- list()
  ex$inited <- character()
  params <- c(model$arg.params, model$aux.params)

  cshape <- function(tensor) {
    s <- inf$out.shapes[[tensor]]
    if (is.null(s)) s <- inf$out.shapes[[paste0(tensor, "_output")]]
    if (is.null(s)) s <- inf$arg.shapes[[tensor]]
    if (is.null(s)) s <- inf$aux.shapes[[tensor]]
    if (is.null(s)) stop("mx.onnx.export: no shape for '", tensor, "'", call. = FALSE)
    rev(as.numeric(s))
  }
  emit <- function(op, inputs, outputs, name, attrs = list())
    ex$nodes[[length(ex$nodes) + 1]] <- list(input = inputs, output = outputs, name = name, op_type = op,
                                             attribute = unname(attrs))
  init <- function(name, dims, values, dtype = 1L) {
    if (name %in% ex$inited) return(name)
    ex$inited <- c(ex$inited, name)
    ex$inits[[length(ex$inits) + 1]] <- mx.internal.onnx.tensor.proto(
      list(name = name, dims = as.numeric(dims), values = as.numeric(values), dtype = dtype))
    name
  }
  a.int <- function(n, v) list(name = n, type = 2, i = as.numeric(v))
  a.ints <- function(n, v) list(name = n, type = 7, ints = as.numeric(v))
  a.float <- function(n, v) list(name = n, type = 1, f = as.numeric(v))
  a.str <- function(n, v) list(name = n, type = 3, s = charToRaw(v))
  is.op <- nodes$op != "null"
  inputs.used <- character()
  # Variables become graph inputs or initializers when first used.
  var.tensor <- function(name, consumer, op) {
    if (name %in% names(shapes)) {
      inputs.used <<- union(inputs.used, name)
      return(name)
    }
    p <- params[[name]]
    if (is.null(p))
      stop("mx.onnx.export: node '", consumer, "' (", op, ") uses '", name,
           "', which is neither an input nor a parameter of the model", call. = FALSE)
    a <- as.array(p)
    init(name, rev(if (is.null(dim(a))) length(a) else dim(a)), a)
  }
  loss.ops <- c("SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput")
  for (i in which(is.op)) {
    op <- nodes$op[[i]]
    nm <- nodes$name[[i]]
    e <- info[[op]]
    if (is.null(e)) stop("mx.onnx.export: unknown operator ", op, call. = FALSE)
    if (length(e$outputs) != 1)
      stop("mx.onnx.export: node '", nm, "' (", op, ") has several outputs, which is not supported", call. = FALSE)
    p <- as.list(stats::setNames(e$param.default, e$param.name))
    given <- nodes$params[[i]]
    p[names(given)] <- as.list(given)
    in.idx <- nodes$inputs[[i]] + 1
    ins <- vapply(seq_along(in.idx), function(k) {
      j <- in.idx[[k]]
      if (nodes$op[[j]] != "null") return(nodes$name[[j]])
      if (op %in% loss.ops && k == 2) return("")
      var.tensor(nodes$name[[j]], nm, op)
    }, "")
    mx.internal.onnx.export.node(op, nm, p, ins, cshape, emit, init, list(int = a.int, ints = a.ints,
                                 float = a.float, str = a.str), params)
  }
  # Heads.
  outs <- outputs(sym)
  head.tensor <- vapply(outs, function(o) {
    for (i in which(is.op)) {
      e <- info[[nodes$op[[i]]]]
      if (o %in% paste0(nodes$name[[i]], "_", e$outputs)) return(nodes$name[[i]])
    }
    if (o %in% nodes$name) return(o)
    stop("mx.onnx.export: cannot find the node of output '", o, "'", call. = FALSE)
  }, "")
  vi <- function(name, dims)
    list(name = name, type = list(tensor_type = list(elem_type = 1,
         shape = list(dim = lapply(dims, function(d) list(dim_value = d))))))
  inputs <- lapply(intersect(names(shapes), inputs.used), function(n) vi(n, rev(as.numeric(shapes[[n]]))))
  outputs <- lapply(seq_along(outs), function(k) vi(head.tensor[[k]], rev(as.numeric(inf$out.shapes[[outs[[k]]]]))))
  list(node = ex$nodes, name = "symnet", initializer = ex$inits, input = inputs, output = outputs)
}

mx.internal.onnx.export.node <- function(op, nm, p, ins, cshape, emit, init, A, params) {
  fail <- function(...) stop("mx.onnx.export: node '", nm, "' (", op, "): ", ..., call. = FALSE)
  tup <- function(key, default = NULL) {
    v <- mx.internal.onnx.parse.tuple(p[[key]])
    if (is.null(v) || !length(v)) default else v
  }
  num <- function(key) as.numeric(p[[key]])
  flag <- function(key) mx.internal.onnx.bool(p[[key]])
  x <- ins[[1]]
  xs <- if (nzchar(x)) cshape(x) else NULL
  unary <- c(relu = "Relu", sigmoid = "Sigmoid", tanh = "Tanh", exp = "Exp", log = "Log", sqrt = "Sqrt",
             abs = "Abs", negative = "Neg", reciprocal = "Reciprocal", floor = "Floor", ceil = "Ceil",
             softsign = "Softsign", `_copy` = "Identity", BlockGrad = "Identity", identity = "Identity",
             LinearRegressionOutput = "Identity", MAERegressionOutput = "Identity", MakeLoss = "Identity",
             LogisticRegressionOutput = "Sigmoid")
  binary <- c(elemwise_add = "Add", broadcast_add = "Add", elemwise_sub = "Sub", broadcast_sub = "Sub",
              elemwise_mul = "Mul", broadcast_mul = "Mul", elemwise_div = "Div", broadcast_div = "Div",
              `_maximum` = "Max", broadcast_maximum = "Max", `_minimum` = "Min", broadcast_minimum = "Min",
              `_power` = "Pow", broadcast_power = "Pow")
  scalar <- list(`_plus_scalar` = c("Add", "x"), `_minus_scalar` = c("Sub", "x"), `_rminus_scalar` = c("Sub", "c"),
                 `_mul_scalar` = c("Mul", "x"), `_div_scalar` = c("Div", "x"), `_rdiv_scalar` = c("Div", "c"),
                 `_power_scalar` = c("Pow", "x"), `_rpower_scalar` = c("Pow", "c"),
                 `_maximum_scalar` = c("Max", "x"), `_minimum_scalar` = c("Min", "x"))
  if (op %in% names(unary)) return(emit(unary[[op]], x, nm, nm))
  if (op %in% names(binary)) return(emit(binary[[op]], ins[1:2], nm, nm))
  if (op %in% names(scalar)) {
    s <- scalar[[op]]
    cn <- init(paste0(nm, "__scalar"), numeric(0), num("scalar"))
    return(emit(s[[1]], if (s[[2]] == "x") c(x, cn) else c(cn, x), nm, nm))
  }
  switch(op,
    Convolution = , Deconvolution = {
      k <- tup("kernel")
      nsp <- length(k)
      s <- tup("stride", rep(1, nsp))
      d <- tup("dilate", rep(1, nsp))
      pad <- tup("pad", rep(0, nsp))
      attrs <- list(A$ints("kernel_shape", k), A$ints("strides", s), A$ints("dilations", d),
                    A$int("group", num("num_group")))
      if (op == "Deconvolution") {
        adj <- tup("adj", rep(0, nsp))
        ts <- tup("target_shape")
        if (!is.null(ts) && any(ts > 0)) {
          xsp <- xs[-(1:2)]
          t <- s * (xsp - 1) + d * (k - 1) + 1 - ts
          adj <- t %% 2
          pad <- (t + 1) %/% 2
        }
        attrs <- c(attrs, list(A$ints("output_padding", adj)))
      }
      attrs <- c(attrs, list(A$ints("pads", c(pad, pad))))
      emit(if (op == "Convolution") "Conv" else "ConvTranspose", ins, nm, nm, attrs)
    },
    FullyConnected = {
      w <- ins[[2]]
      has.bias <- length(ins) > 2
      if (flag("flatten")) {
        if (length(xs) != 2) {
          emit("Flatten", x, paste0(nm, "__flat"), paste0(nm, "__flatten"), list(A$int("axis", 1)))
          x <- paste0(nm, "__flat")
        }
        emit("Gemm", c(x, w, if (has.bias) ins[[3]]), nm, nm, list(A$int("transB", 1)))
      } else {
        emit("Transpose", w, paste0(nm, "__wT"), paste0(nm, "__transpose"), list(A$ints("perm", c(1, 0))))
        out <- if (has.bias) paste0(nm, "__mm") else nm
        emit("MatMul", c(x, paste0(nm, "__wT")), out, if (has.bias) paste0(nm, "__matmul") else nm)
        if (has.bias) emit("Add", c(out, ins[[3]]), nm, nm)
      }
    },
    Activation = {
      t <- c(relu = "Relu", sigmoid = "Sigmoid", tanh = "Tanh", softrelu = "Softplus", softsign = "Softsign")[p$act_type]
      if (is.na(t)) fail("act_type ", p$act_type, " is not supported")
      emit(t, x, nm, nm)
    },
    LeakyReLU = {
      t <- p$act_type
      if (t == "leaky") emit("LeakyRelu", x, nm, nm, list(A$float("alpha", num("slope"))))
      else if (t == "elu") emit("Elu", x, nm, nm, list(A$float("alpha", num("slope"))))
      else if (t == "selu") emit("Selu", x, nm, nm)
      else if (t == "prelu") {
        gname <- ins[[2]]
        g <- as.array(params[[gname]])
        slope <- init(paste0(nm, "__slope"), c(length(g), rep(1, max(0, length(xs) - 2))), g)
        emit("PRelu", c(x, slope), nm, nm)
      } else fail("act_type ", t, " is not supported")
    },
    Pooling = {
      type <- p$pool_type
      nsp <- length(xs) - 2
      if (flag("global_pool")) {
        t <- c(max = "GlobalMaxPool", avg = "GlobalAveragePool", lp = "GlobalLpPool")[type]
        if (is.na(t)) fail("global ", type, " pooling is not supported")
        attrs <- if (type == "lp") list(A$int("p", num("p_value"))) else list()
        return(emit(t, x, nm, nm, attrs))
      }
      k <- tup("kernel")
      s <- tup("stride", rep(1, nsp))
      pad <- tup("pad", rep(0, nsp))
      conv <- p$pooling_convention
      if (conv == "same") fail("pooling_convention 'same' is not supported")
      ceil <- conv == "full"
      if (ceil) {
        xsp <- xs[-(1:2)]
        n.mx <- ceiling((xsp + 2 * pad - k) / s) + 1
        n.onnx <- ifelse((n.mx - 1) * s >= xsp + pad, n.mx - 1, n.mx)
        if (any(n.mx != n.onnx)) fail("the 'full' pooling convention gives a window that starts in the padding, ",
                                      "which ONNX's ceil_mode drops")
      }
      attrs <- list(A$ints("kernel_shape", k), A$ints("strides", s), A$ints("pads", c(pad, pad)),
                    A$int("ceil_mode", as.integer(ceil)))
      if (type == "max") emit("MaxPool", x, nm, nm, attrs)
      else if (type == "avg") emit("AveragePool", x, nm, nm, c(attrs, list(A$int("count_include_pad",
                                   as.integer(flag("count_include_pad"))))))
      else if (type == "lp") emit("LpPool", x, nm, nm, c(attrs[-4], list(A$int("p", num("p_value")))))
      else fail(type, " pooling is not supported")
    },
    BatchNorm = {
      if (num("axis") != 1) fail("only axis 1 is supported")
      if (flag("output_mean_var")) fail("output_mean_var is not supported")
      gamma <- ins[[2]]
      if (flag("fix_gamma")) gamma <- init(paste0(nm, "__gamma_fixed"), xs[[2]], rep(1, xs[[2]]))
      emit("BatchNormalization", c(x, gamma, ins[3:5]), nm, nm,
           list(A$float("epsilon", num("eps")), A$float("momentum", num("momentum"))))
    },
    Flatten = emit("Flatten", x, nm, nm, list(A$int("axis", 1))),
    Reshape = {
      shape <- tup("shape")
      if (is.null(shape) || flag("reverse") || any(shape < -1) || !is.null(tup("target_shape")))
        shape <- cshape(nm)
      sh <- init(paste0(nm, "__shape"), length(shape), shape, 7L)
      emit("Reshape", c(x, sh), nm, nm)
    },
    transpose = {
      axes <- tup("axes")
      emit("Transpose", x, nm, nm, if (length(axes)) list(A$ints("perm", axes)) else list())
    },
    Concat = , concat = emit("Concat", ins, nm, nm, list(A$int("axis", num("dim")))),
    add_n = emit("Sum", ins, nm, nm),
    Dropout = emit("Dropout", x, nm, nm),
    softmax = , log_softmax = {
      if (!is.na(p$temperature) && p$temperature != "None" && num("temperature") != 1) fail("temperature is not supported")
      if (flag("use_length")) fail("use_length is not supported")
      emit(if (op == "softmax") "Softmax" else "LogSoftmax", x, nm, nm, list(A$int("axis", num("axis"))))
    },
    SoftmaxActivation = , SoftmaxOutput = {
      axis <- if (op == "SoftmaxActivation") { if (p$mode == "channel") 1 else NA }
              else if (flag("preserve_shape")) -1 else if (flag("multi_output")) 1 else NA
      if (!is.na(axis) || length(xs) == 2) return(emit("Softmax", x, nm, nm, list(A$int("axis", if (is.na(axis)) 1 else axis))))
      emit("Flatten", x, paste0(nm, "__flat"), paste0(nm, "__flatten"), list(A$int("axis", 1)))
      emit("Softmax", paste0(nm, "__flat"), paste0(nm, "__sm"), paste0(nm, "__softmax"), list(A$int("axis", 1)))
      sh <- init(paste0(nm, "__shape"), length(xs), xs, 7L)
      emit("Reshape", c(paste0(nm, "__sm"), sh), nm, nm)
    },
    clip = {
      lo <- init(paste0(nm, "__min"), numeric(0), num("a_min"))
      hi <- init(paste0(nm, "__max"), numeric(0), num("a_max"))
      emit("Clip", c(x, lo, hi), nm, nm)
    },
    LRN = emit("LRN", x, nm, nm, list(A$int("size", num("nsize")), A$float("alpha", num("alpha")),
                                      A$float("beta", num("beta")), A$float("bias", num("knorm")))),
    Pad = {
      pw <- tup("pad_width")
      r <- length(pw) / 2
      pads <- c(pw[seq(1, 2 * r, 2)], pw[seq(2, 2 * r, 2)])
      pi <- init(paste0(nm, "__pads"), length(pads), pads, 7L)
      mode <- p$mode
      inputs <- c(x, pi)
      if (mode == "constant") inputs <- c(inputs, init(paste0(nm, "__value"), numeric(0), num("constant_value")))
      emit("Pad", inputs, nm, nm, list(A$str("mode", mode)))
    },
    dot = , batch_dot = {
      r <- length(xs)
      if (op == "dot" && (r != 2 || length(cshape(ins[[2]])) != 2)) fail("only 2-D dot is supported")
      perm <- c(seq_len(r - 2) - 1, r - 1, r - 2)
      a <- ins[[1]]
      b <- ins[[2]]
      if (flag("transpose_a")) {
        emit("Transpose", a, paste0(nm, "__aT"), paste0(nm, "__transpose_a"), list(A$ints("perm", perm)))
        a <- paste0(nm, "__aT")
      }
      if (flag("transpose_b")) {
        emit("Transpose", b, paste0(nm, "__bT"), paste0(nm, "__transpose_b"), list(A$ints("perm", perm)))
        b <- paste0(nm, "__bT")
      }
      emit("MatMul", c(a, b), nm, nm)
    },
    fail("operator ", op, " is not supported for export"))
}
