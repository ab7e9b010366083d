library(testthat)
library(symnet)

test_check("symnet")
