# Runs the test suite against the installed symnet and ends with the line
# "N passed, N failed, N skipped".  Exits non-zero when anything failed.
# Usage (from the repository root): Rscript tools/run-tests.R [filter]
args <- commandArgs(trailingOnly = TRUE)
filter <- if (length(args)) args[[1]] else NULL
# The full suite: tests marked skip_on_cran() run here too.
Sys.setenv(NOT_CRAN = "true")
suppressPackageStartupMessages({
  library(testthat)
  library(symnet)
})
res <- testthat::test_dir("tests/testthat", filter = filter, package = "symnet",
                          load_package = "installed", reporter = "summary",
                          stop_on_failure = FALSE, stop_on_warning = FALSE)
df <- as.data.frame(res)
passed <- sum(df$passed)
failed <- sum(df$failed) + sum(df$error)
skipped <- sum(df$skipped)
cat(sprintf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped))
if (failed > 0 || passed == 0) quit(status = 1)
