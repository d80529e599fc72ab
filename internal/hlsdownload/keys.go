package hlsdownload

import (
	"context"
	"crypto/aes"
	"fmt"
	"sync"
)

// keyCache fetches each key URI once per download.
type keyCache struct {
	r  *run
	mu sync.Mutex
	m  map[string]*keyEntry
}

type keyEntry struct {
	once sync.Once
	key  []byte
	err  error
}

func (c *keyCache) get(ctx context.Context, target string) ([]byte, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*keyEntry{}
	}
	e := c.m[target]
	if e == nil {
		e = &keyEntry{}
		c.m[target] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		b, _, err := c.r.fetchSmall(ctx, target, false, aes.BlockSize)
		switch {
		case err != nil:
			e.err = &KeyError{URL: target, Err: err}
		case len(b) != aes.BlockSize:
			e.err = &KeyError{URL: target, Err: fmt.Errorf("%d bytes, want an AES-128 key of %d", len(b), aes.BlockSize)}
		default:
			e.key = b
		}
	})
	return e.key, e.err
}
