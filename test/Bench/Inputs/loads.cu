extern "C" __global__ void chain(const float4 *p, float *out) {
  float a = p[0].x;
  float b = p[1].x;
  float c = p[2].x + p[3].x;
  out[0] = a + b + c;
}
