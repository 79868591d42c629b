package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Network bounds every network operation of a registry store, so that a
// registry that accepts and never answers, or trickles its answer, cannot
// hold a command (and the install's lock) forever.
type Network struct {
	// Connect bounds the TCP connection and the TLS handshake.
	Connect time.Duration
	// Response bounds the wait for a response's headers once the request
	// is sent.
	Response time.Duration
	// Stall is the window in which a response body must deliver at least
	// MinBytes bytes, and a request body's write must progress; a body
	// trickling slower is abandoned.
	Stall    time.Duration
	MinBytes int64
}

// DefaultNetwork are the bounds when nothing else is configured: a
// black-holed registry is given up after about a minute.
var DefaultNetwork = Network{Connect: 10 * time.Second, Response: 30 * time.Second, Stall: 30 * time.Second, MinBytes: 1024}

// StallError is a transfer that delivered too little for too long.
type StallError struct {
	Got    int64
	Window time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the registry sent %d bytes in %s: giving up on a stalled transfer", e.Got, e.Window)
}

// Timeout marks it as a timeout for net.Error checks.
func (e *StallError) Timeout() bool { return true }

// Temporary implements net.Error.
func (e *StallError) Temporary() bool { return false }

// transport is an HTTP transport with n's bounds.
func (n Network) transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: n.Connect, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, write: n.Stall}, nil
	}
	t.TLSHandshakeTimeout = n.Connect
	t.ResponseHeaderTimeout = n.Response
	return &stallTransport{base: t, n: n}
}

// remoteOptions are go-containerregistry's options for n: its transport,
// and retries only of what is worth retrying (not a deadline that passed:
// three more waits of the same length would only hold the lock longer).
func (n Network) remoteOptions(rt http.RoundTripper) []remote.Option {
	return []remote.Option{
		remote.WithTransport(rt),
		remote.WithRetryPredicate(func(err error) bool {
			if isDeadline(err) {
				return false
			}
			var te *transport.Error
			if errors.As(err, &te) {
				return te.Temporary()
			}
			var ne net.Error
			return errors.As(err, &ne) && !ne.Timeout() || errors.Is(err, io.ErrUnexpectedEOF)
		}),
	}
}

// isDeadline reports whether err is one of the bounds above passing.
func isDeadline(err error) bool {
	var se *StallError
	var ne net.Error
	return errors.As(err, &se) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// deadlineConn gives every write a deadline: a peer that stops reading
// cannot block a push forever.
type deadlineConn struct {
	net.Conn
	write time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.write > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.write))
	}
	return c.Conn.Write(p)
}

// stallTransport watches response bodies for stalls.
type stallTransport struct {
	base http.RoundTripper
	n    Network
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || t.n.Stall <= 0 {
		return resp, err
	}
	resp.Body = newStallBody(resp.Body, t.n)
	return resp, nil
}

// stallBody closes a body that delivered fewer than MinBytes bytes in a
// Stall window, which makes the blocked Read return.
type stallBody struct {
	rc      io.ReadCloser
	n       Network
	mu      sync.Mutex
	got     int64
	stalled *StallError
	timer   *time.Timer
}

func newStallBody(rc io.ReadCloser, n Network) *stallBody {
	b := &stallBody{rc: rc, n: n}
	b.timer = time.AfterFunc(n.Stall, b.check)
	return b
}

func (b *stallBody) check() {
	b.mu.Lock()
	got := b.got
	b.got = 0
	if got < b.n.MinBytes {
		b.stalled = &StallError{Got: got, Window: b.n.Stall}
	}
	stalled := b.stalled != nil
	b.mu.Unlock()
	if stalled {
		b.rc.Close()
		return
	}
	b.timer.Reset(b.n.Stall)
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.got += int64(n)
	stalled := b.stalled
	b.mu.Unlock()
	if err != nil {
		b.timer.Stop()
		if stalled != nil && !errors.Is(err, io.EOF) {
			return n, stalled
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
