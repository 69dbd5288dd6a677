func.func @collectives(%x: tensor<?x128xf32>) {
  %r = tfm.all_reduce %x sum ranks = 2 : tensor<?x128xf32>
  %m = tfm.all_reduce %x max ranks = 8 : tensor<?x128xf32>
  %g = tfm.all_gather %x axis = 1 ranks = 2 : tensor<?x128xf32> -> tensor<?x256xf32>
  return
}
