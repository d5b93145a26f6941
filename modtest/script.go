package modtest

import (
	"context"
	"fmt"
)

// responder computes one answer of a fake from what it was asked.
type responder[In, Out any] func(ctx context.Context, in In) (Out, error)

// script is what a fake answers for one key (a homeserver method; an HTTP
// method and URL): first the failures set with fail, then the answers, either
// one that answers every call or a sequence used up one per call.
type script[In, Out any] struct {
	failures int   // calls left to fail; -1: every call
	failure  error // what they fail with
	answers  []responder[In, Out]
	repeat   bool // answers[0] answers every call
	used     int  // answers of the sequence used
}

// answer sets one answer for every call (repeat) or a sequence.
func (s *script[In, Out]) answer(rs []responder[In, Out], repeat bool) {
	s.answers, s.repeat, s.used = rs, repeat, 0
}

// fail makes the next times calls fail with err (every call when times < 1),
// before any answer.
func (s *script[In, Out]) fail(err error, times int) {
	if times < 1 {
		times = -1
	}
	s.failures, s.failure = times, err
}

// next picks what answers the call; the caller runs it without its lock
// held (a responder may call back into the test). ok is false when the
// script has neither a failure nor an answer left.
func (s *script[In, Out]) next() (r responder[In, Out], err error, ok bool) {
	switch {
	case s.failures != 0:
		if s.failures > 0 {
			s.failures--
		}
		return nil, s.failure, true
	case len(s.answers) == 0:
		return nil, nil, false
	case s.repeat:
		return s.answers[0], nil, true
	case s.used < len(s.answers):
		s.used++
		return s.answers[s.used-1], nil, true
	default:
		return nil, fmt.Errorf("its %d answers in sequence are used up", len(s.answers)), true
	}
}

// constant is a responder that always gives v.
func constant[In, Out any](v Out) responder[In, Out] {
	return func(context.Context, In) (Out, error) { return v, nil }
}
