package collectivetest

import (
	"fmt"

	"github.com/opennetworks/onetdp/collective"
)

// Case is one operation to check: what Reference computes and RunCase runs.
type Case struct {
	Op     collective.OpKind
	DType  collective.DType // reductions only
	Reduce collective.Op    // reductions only
	Root   int              // Broadcast, Reduce
}

func (c Case) String() string {
	switch c.Op {
	case collective.OpAllReduce, collective.OpReduceScatter:
		return fmt.Sprintf("%v %v %v", c.Op, c.DType, c.Reduce)
	case collective.OpReduce:
		return fmt.Sprintf("%v %v %v root %d", c.Op, c.DType, c.Reduce, c.Root)
	case collective.OpBroadcast:
		return fmt.Sprintf("%v root %d", c.Op, c.Root)
	}
	return c.Op.String()
}

// Reference computes, sequentially, what every rank holds after the
// operation given every rank's input: out[r] is rank r's receive buffer
// (nil where the operation leaves none: Reduce off the root). Reductions
// run in rank order 0, 1, ..., n-1 with collective.ReduceInto and
// collective.Finish. Inputs: AllReduce, Reduce, Broadcast the buffer;
// ReduceScatter and AllToAll n blocks; AllGather one block.
func Reference(c Case, inputs [][]byte) ([][]byte, error) {
	n := len(inputs)
	if n == 0 {
		return nil, fmt.Errorf("reference: no ranks: %w", collective.ErrInvalidArgument)
	}
	out := make([][]byte, n)
	switch c.Op {
	case collective.OpAllReduce, collective.OpReduce, collective.OpReduceScatter:
		acc := append([]byte(nil), inputs[0]...)
		for r := 1; r < n; r++ {
			if err := collective.ReduceInto(acc, inputs[r], c.DType, c.Reduce); err != nil {
				return nil, fmt.Errorf("reference: rank %d: %w", r, err)
			}
		}
		if err := collective.Finish(acc, c.DType, c.Reduce, n); err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		switch c.Op {
		case collective.OpAllReduce:
			for r := range out {
				out[r] = append([]byte(nil), acc...)
			}
		case collective.OpReduce:
			out[c.Root] = acc
		default:
			if len(acc)%n != 0 {
				return nil, fmt.Errorf("reference: reducescatter of %d bytes over %d ranks: %w", len(acc), n, collective.ErrInvalidArgument)
			}
			blk := len(acc) / n
			for r := range out {
				out[r] = append([]byte(nil), acc[r*blk:(r+1)*blk]...)
			}
		}
	case collective.OpAllGather:
		var all []byte
		for _, in := range inputs {
			all = append(all, in...)
		}
		for r := range out {
			out[r] = append([]byte(nil), all...)
		}
	case collective.OpBroadcast:
		for r := range out {
			out[r] = append([]byte(nil), inputs[c.Root]...)
		}
	case collective.OpAllToAll:
		blk := len(inputs[0]) / n
		for r := range out {
			out[r] = make([]byte, 0, n*blk)
			for s := 0; s < n; s++ {
				out[r] = append(out[r], inputs[s][r*blk:(r+1)*blk]...)
			}
		}
	case collective.OpBarrier:
	default:
		return nil, fmt.Errorf("reference: %v: %w", c.Op, collective.ErrNotSupported)
	}
	return out, nil
}
