"""Reading and preparing the inputs: GCT expression, gene lists, the scaler, slides, tiling, the tile store."""
