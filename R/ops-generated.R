.ops.signature <- ""
