//===- TfmBase.td - tfm dialect, base class, enums and attributes ---------===//
//
// The `tfm` (transformer) dialect describes LLM inference programs in two
// levels: graph-level ops as a frontend emits them, and fused/kernel-level ops
// that codegen consumes. Passes move a program from the first to the second.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TFM_BASE
#define KILN_TFM_BASE

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Tfm_Dialect : Dialect {
  let name = "tfm";
  let cppNamespace = "::kiln::tfm";
  let summary = "Transformer inference graphs at graph and kernel level";
  let description = [{
    Ops on builtin tensor types with value semantics. A program is one step of
    one sequence: `T` new tokens (a dynamic dimension) at given positions; the
    KV-cache ops read and append the sequence's cached keys and values for one
    layer. Batching several sequences is an execution detail of the runtime.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Tfm_Op<string mnemonic, list<Trait> traits = []>
    : Op<Tfm_Dialect, mnemonic, traits>;

class Tfm_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Tfm_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

// A 64-bit integer attribute read as a signed value (axes, sizes, counts).
def Tfm_I64Attr : TypedSignlessIntegerAttrBase<I64, "int64_t", "64-bit integer attribute"> {
  let convertFromStorage = "$_self.getValue().getSExtValue()";
}

def Tfm_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def Tfm_IdTensor : 1DTensorOf<[I32]>;
def Tfm_AnyTensor : RankedTensorOf<[AnyType]>;
def Tfm_QuantTensor : RankedTensorOf<[I8, I<4>, F8E4M3FN]>;

//===----------------------------------------------------------------------===//
// Enums (spelled as words in the assembly)
//===----------------------------------------------------------------------===//

def Tfm_RopeStyle : I32EnumAttr<"RopeStyle", "how RoPE pairs the rotated dimensions", [
    I32EnumAttrCase<"neox", 0>,  // pairs (i, i + rotary_dim/2): GPT-NeoX, Llama
    I32EnumAttrCase<"gptj", 1>   // pairs (2i, 2i + 1): GPT-J
  ]> {
  let cppNamespace = "::kiln::tfm";
  let genSpecializedAttr = 0;
}
// Enum attributes print as a bare word after a space: `#tfm.activation silu`
// in the generic form (and in bytecode, which stores attributes as text).
// Without the space, `#tfm.activationsilu` would not parse back; op formats
// write `` before an enum operand so that the op form has a single space.
def Tfm_RopeStyleAttr : EnumAttr<Tfm_Dialect, Tfm_RopeStyle, "rope_style"> {
  let assemblyFormat = "$value";
}

def Tfm_RopeScaling : I32EnumAttr<"RopeScaling", "RoPE frequency scaling", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"linear", 1>,  // positions divided by `factor`
    I32EnumAttrCase<"llama3", 2>   // Llama 3.1 wavelength-dependent scaling
  ]> {
  let cppNamespace = "::kiln::tfm";
  let genSpecializedAttr = 0;
}

def Tfm_Activation : I32EnumAttr<"Activation", "pointwise activation", [
    I32EnumAttrCase<"silu", 0>,
    I32EnumAttrCase<"gelu", 1>,       // exact, erf-based
    I32EnumAttrCase<"gelu_tanh", 2>   // tanh approximation (gelu_new, gelu_pytorch_tanh)
  ]> {
  let cppNamespace = "::kiln::tfm";
  let genSpecializedAttr = 0;
}
def Tfm_ActivationAttr : EnumAttr<Tfm_Dialect, Tfm_Activation, "activation"> {
  let assemblyFormat = "$value";
}

def Tfm_GeluApproximation : I32EnumAttr<"GeluApproximation", "GELU formula", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"tanh", 1>
  ]> {
  let cppNamespace = "::kiln::tfm";
  let genSpecializedAttr = 0;
}
def Tfm_GeluApproximationAttr
    : EnumAttr<Tfm_Dialect, Tfm_GeluApproximation, "gelu_approximation"> {
  let assemblyFormat = "$value";
}

def Tfm_Reduction : I32EnumAttr<"Reduction", "collective reduction", [
    I32EnumAttrCase<"sum", 0>,
    I32EnumAttrCase<"max", 1>
  ]> {
  let cppNamespace = "::kiln::tfm";
  let genSpecializedAttr = 0;
}
def Tfm_ReductionAttr : EnumAttr<Tfm_Dialect, Tfm_Reduction, "reduction"> {
  let assemblyFormat = "$value";
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// A float64 parameter (stored as APFloat, which attribute storage can hash)
// spelled as a plain number that round-trips exactly.
class Tfm_F64Parameter<string default> : APFloatParameter<""> {
  let defaultValue = "::llvm::APFloat(" # default # ")";
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
      double value;
      if ($_parser.parseFloat(value))
        return ::mlir::failure();
      return ::llvm::APFloat(value);
    }() }];
  let printer = [{ $_printer.printFloat($_self) }];
}

class Tfm_DefaultEnumParameter<EnumAttrInfo enumInfo, string default>
    : EnumParameter<enumInfo> {
  let defaultValue = default;
}

def Tfm_RopeAttr : Tfm_Attr<"Rope", "rope"> {
  let summary = "rotary position embedding configuration";
  let description = [{
    How q and k are rotated: the pairing `style`, how many leading dimensions
    of each head rotate (`rotary_dim`, even, at most head_dim), the base
    `theta`, and an optional frequency `scaling` (`linear` divides positions
    by `factor`; `llama3` rescales long wavelengths as in Llama 3.1 using
    `factor`, `low_freq_factor`, `high_freq_factor` and
    `original_max_position`).

    Example:

    ```mlir
    #tfm.rope<style = neox, rotary_dim = 64, theta = 500000.0, scaling = llama3,
              factor = 32.0, low_freq_factor = 1.0, high_freq_factor = 4.0,
              original_max_position = 8192>
    ```
  }];
  let parameters = (ins
    EnumParameter<Tfm_RopeStyle>:$style,
    "int64_t":$rotary_dim,
    Tfm_F64Parameter<"10000.0">:$theta,
    Tfm_DefaultEnumParameter<Tfm_RopeScaling,
                             "::kiln::tfm::RopeScaling::none">:$scaling,
    Tfm_F64Parameter<"1.0">:$factor,
    Tfm_F64Parameter<"1.0">:$low_freq_factor,
    Tfm_F64Parameter<"4.0">:$high_freq_factor,
    DefaultValuedParameter<"int64_t", "0">:$original_max_position
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // KILN_TFM_BASE
