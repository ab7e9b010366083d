# Draws bench/throughput-batch.png from results/sweep.csv (written by
# bench/sweep.py): images/s against batch size, training and inference,
# symnet and PyTorch, log-log axes.  Base graphics only; PNG through cairo
# (capabilities("png")), else a PDF converted with pdftoppm.
#
#   Rscript bench/plot-sweep.R bench/results/sweep.csv bench/throughput-batch.png "title"

a <- commandArgs(trailingOnly = TRUE)
csv <- if (length(a) >= 1) a[1] else "bench/results/sweep.csv"
png.file <- if (length(a) >= 2) a[2] else "bench/throughput-batch.png"
title <- if (length(a) >= 3) a[3] else "LeNet, Fashion-MNIST"
d <- utils::read.csv(csv)

draw <- function() {
  op <- par(mfrow = c(1, 2), mar = c(4.2, 4.6, 3, 1), oma = c(0, 0, 2, 0))
  on.exit(par(op))
  cols <- c(symnet = "#1b6ca8", torch = "#d95f02")
  for (what in c("train_ips", "infer_ips")) {
    yl <- range(d[[what]][is.finite(d[[what]]) & d[[what]] > 0])
    yl[2] <- yl[2] * 2  # room for the legend
    plot(NA, xlim = range(d$batch), ylim = yl, log = "xy", xaxt = "n", yaxt = "n",
         xlab = "batch size", ylab = "images / s",
         main = if (what == "train_ips") "training (one pass, FeedForward.create)" else "inference (predict)")
    axis(1, at = sort(unique(d$batch)))
    ticks <- axTicks(2, log = TRUE)
    axis(2, at = ticks, labels = format(ticks, big.mark = ",", scientific = FALSE), las = 1, cex.axis = 0.8)
    grid(equilogs = FALSE)
    for (fw in names(cols)) {
      s <- d[d$framework == fw, ]
      s <- s[order(s$batch), ]
      lines(s$batch, s[[what]], type = "b", pch = 19, lwd = 2, col = cols[[fw]])
    }
    legend("topleft", legend = c("symnet", "PyTorch"), col = cols, lwd = 2, pch = 19, bty = "n")
  }
  mtext(title, outer = TRUE, cex = 1.1)
}

if (isTRUE(capabilities("png"))) {
  grDevices::png(png.file, width = 1100, height = 480, type = if (capabilities("cairo")) "cairo" else "Xlib")
  draw()
  invisible(grDevices::dev.off())
} else {
  pdf.file <- sub("\\.png$", ".pdf", png.file)
  grDevices::pdf(pdf.file, width = 11, height = 4.8)
  draw()
  invisible(grDevices::dev.off())
  st <- system2("pdftoppm", c("-png", "-r", "100", "-singlefile", pdf.file, sub("\\.png$", "", png.file)))
  if (st != 0) stop("R cannot write PNG here and pdftoppm failed; the plot is in ", pdf.file)
  unlink(pdf.file)
}
cat("wrote", png.file, "\n")
