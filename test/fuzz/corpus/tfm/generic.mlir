func.func @generic(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) attributes {tfm.rope = #tfm.rope<style = gptj, rotary_dim = 8>} {
  %s = "tfm.softmax"(%x) <{axis = 1 : i64}> : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %g = "tfm.gelu"(%x) <{approximation = #tfm<gelu_approximation tanh>}> : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %r = "tfm.all_reduce"(%x) <{ranks = 2 : i64, reduction = #tfm<reduction sum>}> : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %p:2 = "tfm.split"(%x) <{axis = 1 : i64}> : (tensor<?x64xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>)
  return
}
