func.func @rope(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  %a = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 10000.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %b = tfm.rope %q, %pos config = <style = gptj, rotary_dim = 8, theta = 500000.0, scaling = linear, factor = 2.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %c = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 500000.0, scaling = llama3,
      factor = 32.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_position = 8192>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}
