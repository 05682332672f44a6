package collective

import (
	"fmt"
	"strings"
)

// DType is the element type of a buffer.
type DType uint8

// The element types, with NCCL's names in String.
const (
	Float32 DType = iota
	Float64
	Float16
	BFloat16
	Int8
	Uint8
	Int32
	Int64
	numDTypes
)

var dtypeNames = [numDTypes]string{"float", "double", "half", "bfloat16", "int8", "uint8", "int32", "int64"}
var dtypeSizes = [numDTypes]int{4, 8, 2, 2, 1, 1, 4, 8}

// DTypes lists every type, in order.
func DTypes() []DType {
	d := make([]DType, numDTypes)
	for i := range d {
		d[i] = DType(i)
	}
	return d
}

// Size is the element size in bytes; 0 for an unknown type.
func (d DType) Size() int {
	if d >= numDTypes {
		return 0
	}
	return dtypeSizes[d]
}

// Valid reports whether d is one of the types above.
func (d DType) Valid() bool { return d < numDTypes }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d <= BFloat16 }

// String is the name nccl-tests prints ("float", "half", "bfloat16", ...).
func (d DType) String() string {
	if d >= numDTypes {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeNames[d]
}

// ParseDType accepts nccl-tests' names and the Go/NumPy ones: float,
// float32, double, float64, half, float16, bfloat16, bf16, int8, uint8,
// int32, int, int64.
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "float", "float32", "f32":
		return Float32, nil
	case "double", "float64", "f64":
		return Float64, nil
	case "half", "float16", "f16", "fp16":
		return Float16, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "int8", "char":
		return Int8, nil
	case "uint8", "byte":
		return Uint8, nil
	case "int32", "int":
		return Int32, nil
	case "int64":
		return Int64, nil
	}
	return 0, fmt.Errorf("type %q (want float, double, half, bfloat16, int8, uint8, int32 or int64): %w", s, ErrInvalidArgument)
}

// Op is a reduction.
type Op uint8

// The reductions; Avg is Sum divided by the rank count (integer types
// truncate toward zero).
const (
	Sum Op = iota
	Prod
	Min
	Max
	Avg
	numOps
)

var opNames = [numOps]string{"sum", "prod", "min", "max", "avg"}

// Ops lists every reduction, in order.
func Ops() []Op {
	o := make([]Op, numOps)
	for i := range o {
		o[i] = Op(i)
	}
	return o
}

// Valid reports whether o is one of the reductions above.
func (o Op) Valid() bool { return o < numOps }

// String is nccl-tests' name: sum, prod, min, max, avg.
func (o Op) String() string {
	if o >= numOps {
		return fmt.Sprintf("Op(%d)", uint8(o))
	}
	return opNames[o]
}

// ParseOp accepts sum, prod, min, max, avg.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if strings.EqualFold(s, n) {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("reduction %q (want sum, prod, min, max or avg): %w", s, ErrInvalidArgument)
}
