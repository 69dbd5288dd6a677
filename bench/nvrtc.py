"""NVRTC from Python (ctypes), as the runtime uses it at load: the runtime's
prelude, then the source, compiled for one architecture."""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PRELUDE = os.path.join(HERE, "..", "runtime", "kernels", "prelude.cuh")


def prelude_lines():
    """Lines of the prelude, which NVRTC's line numbers count first."""
    with open(PRELUDE) as f:
        return f.read().count("\n")


def nvrtc_architecture(arch):
    """What the runtime compiles for on a GPU of `arch` (as
    include/kiln/Support/CudaArch.h): sm_90a on Hopper."""
    return arch + "a" if arch == "sm_90" else arch


def compile_cuda(source, name, cuda_home, arch="sm_90", options=()):
    """Compiles `source` after runtime/kernels/prelude.cuh for a GPU of `arch`,
    as the runtime does. Returns (ok, log, cubin): NVRTC's log (ptxas's too,
    with --ptxas-options=-v) and the cubin (None on failure)."""
    with open(PRELUDE) as f:
        text = (f.read() + "\n" + source).encode()
    nvrtc = ctypes.CDLL(os.path.join(cuda_home, "lib64", "libnvrtc.so"))
    program = ctypes.c_void_p()
    nvrtc.nvrtcCreateProgram(ctypes.byref(program), text, (name + ".cu").encode(), 0, None, None)
    args = [f"--gpu-architecture={nvrtc_architecture(arch)}".encode(), b"-std=c++17",
            b"--include-path=" + os.path.join(cuda_home, "include").encode()]
    args += [option.encode() for option in options]
    status = nvrtc.nvrtcCompileProgram(program, len(args), (ctypes.c_char_p * len(args))(*args))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    cubin = None
    if status == 0:
        nvrtc.nvrtcGetCUBINSize(program, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetCUBIN(program, buffer)
        cubin = buffer.raw
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    return status == 0, log.value.decode(errors="replace"), cubin


def emit_cuda(kiln_compile, config, compile_args):
    """The artifact's kernels as `kiln-compile --emit=cuda` prints them."""
    return subprocess.run([kiln_compile, config, "--emit=cuda"] + list(compile_args), check=True,
                          capture_output=True, text=True).stdout


def default_nvdisasm():
    return shutil.which("nvdisasm") or "/usr/local/cuda/bin/nvdisasm"


def require_nvdisasm(nvdisasm):
    """Exits with a message naming where to get nvdisasm when there is none."""
    if not os.access(nvdisasm, os.X_OK):
        sys.exit(f"no nvdisasm at {nvdisasm}: pass --nvdisasm (pip install nvidia-cuda-nvdisasm)")


def disassemble(cubin, nvdisasm, line_option):
    """nvdisasm's listing of `cubin` with source lines (-g, or -gi with inline chains)."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([nvdisasm, line_option, "-c", f.name], check=True, capture_output=True,
                              text=True).stdout
