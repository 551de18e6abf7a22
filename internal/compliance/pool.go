package compliance

import (
	"context"
	"sync"
)

// pool runs fn on submitted items with a fixed number of goroutines, so a
// stream of rows becomes a stream of enqueues without collecting the rows.
// The first error cancels the pool's context and is what Wait returns.
type pool[T any] struct {
	ctx    context.Context
	cancel context.CancelFunc
	items  chan T
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newPool[T any](ctx context.Context, workers int, fn func(context.Context, T) error) *pool[T] {
	ctx, cancel := context.WithCancel(ctx)
	p := &pool[T]{ctx: ctx, cancel: cancel, items: make(chan T, workers)}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for it := range p.items {
				if p.ctx.Err() != nil {
					continue
				}
				if err := fn(p.ctx, it); err != nil {
					p.fail(err)
				}
			}
		}()
	}
	return p
}

func (p *pool[T]) fail(err error) {
	p.once.Do(func() {
		p.err = err
		p.cancel()
	})
}

// submit hands item to a worker; it returns an error once the pool failed.
func (p *pool[T]) submit(item T) error {
	select {
	case p.items <- item:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// wait stops taking items, waits for the workers and returns the first error.
func (p *pool[T]) wait() error {
	close(p.items)
	p.wg.Wait()
	p.cancel()
	if p.err != nil {
		return p.err
	}
	return nil
}
