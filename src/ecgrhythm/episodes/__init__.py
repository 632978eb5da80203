"""AF episodes of long records: window probabilities smoothed into episodes placed on beats (`finder`), and rhythm annotations read from `.atr` files (`annotations`)."""
