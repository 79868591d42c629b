package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/relcheck/relcheck/perf"
)

// byteBar shows the bytes of a push: a bar redrawn in place on a
// terminal, a line per quarter otherwise (for large pushes only).
type byteBar struct {
	w     io.Writer
	tty   bool
	label string
	total int64

	mu       sync.Mutex
	n        int64
	start    time.Time
	last     time.Time
	quarters int64
	reported bool
}

func (b *byteBar) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	b.n += n
	if b.n >= b.total && b.total > 0 {
		b.report(now)
		return
	}
	if b.tty {
		if now.Sub(b.last) < 100*time.Millisecond && b.n < b.total {
			return
		}
		b.last = now
		const width = 24
		k := int(int64(width) * min(b.n, b.total) / max(1, b.total))
		fmt.Fprintf(b.w, "\r\033[Krelcheck: %s [%s%s] %s/%s", b.label, strings.Repeat("#", k), strings.Repeat(".", width-k), mib(b.n), mib(b.total))
		return
	}
	if b.total >= 16<<20 {
		if q := 4 * min(b.n, b.total) / b.total; q > b.quarters && q < 4 {
			b.quarters = q
			fmt.Fprintf(b.w, "relcheck: %s %d%% (%s of %s)\n", b.label, 25*q, mib(b.n), mib(b.total))
		}
	}
}

// finish ends the bar with a summary line, unless all bytes were read
// and it is there already.
func (b *byteBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.report(time.Now())
}

// report prints the summary line once.
func (b *byteBar) report(now time.Time) {
	if b.start.IsZero() || b.reported {
		return // nothing was read (every blob was already there), or said
	}
	b.reported = true
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	if b.tty || b.total >= 16<<20 {
		fmt.Fprintf(b.w, "relcheck: %s: %s in %s\n", b.label, mib(b.n), now.Sub(b.start).Round(10*time.Millisecond))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// perfProgress shows the perf gate's rounds: a bar redrawn in place on a
// terminal, a plain line per round otherwise (CI logs).
func perfProgress(w io.Writer, tty bool) func(perf.Progress) {
	return func(p perf.Progress) {
		left := ""
		if p.Done < p.Total {
			left = fmt.Sprintf(", about %s left", p.Left.Round(time.Second))
		}
		if !tty {
			fmt.Fprintf(w, "relcheck: perf %s %d/%d done%s\n", p.Phase, p.Done, p.Total, left)
			return
		}
		const width = 20
		n := width * p.Done / max(1, p.Total)
		fmt.Fprintf(w, "\r\033[Krelcheck: perf %s [%s%s] %d/%d%s", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Done, p.Total, left)
		if p.Done == p.Total {
			fmt.Fprintln(w)
		}
	}
}
