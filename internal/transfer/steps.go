package transfer

import "context"

// Step is one state of an engine's state machine, in the style of grab:
// it does its work and returns the next step, nil at the end.
type Step func(ctx context.Context) (Step, error)

// RunSteps runs the steps from first until one returns nil or an error,
// or ctx ends (its cause is returned), so that every path, errors and
// cancellation included, ends in the same place.
func RunSteps(ctx context.Context, first Step) error {
	for f := first; f != nil; {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		var err error
		if f, err = f(ctx); err != nil {
			return err
		}
	}
	return nil
}
