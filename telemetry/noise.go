package telemetry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

// Differential privacy of the published figures. Every figure of a cell
// that the summary, the dashboard and the gates see carries Laplace noise
// of scale sensitivity/ε, so that what is shown says nothing certain
// about any one report, however many reports of their own someone sends
// around it. A report's contribution to a cell is bounded when it is
// stored (one report, one install; each counter clipped: clipCounter), so
// the sensitivity of reports, installs, networks and each counter is 1,
// and 10 for upgrade.hops.
//
// The noise of a figure is drawn from a keyed hash of the cell, the figure
// and its true value: asking again gives the same answer, so repeating a
// query averages nothing away; a new report changes the value and draws
// anew. Each published state of a figure is ε-differentially private
// with respect to one report; someone who adds m reports of their own and
// reads after each spends up to m·ε on that figure.

// DefaultEpsilon is the privacy parameter of each published figure.
const DefaultEpsilon = 1.0

// Noise says how the published figures were perturbed.
type Noise struct {
	// Epsilon is ε of each figure; Scale the Laplace scale of a figure of
	// sensitivity 1 (1/ε): a gate keeps a margin of a few scales.
	Epsilon float64 `json:"epsilon"`
	Scale   float64 `json:"scale"`
}

// clipCounter bounds what one report adds to a counter of a cell: whether
// the install saw the event that week (1), and up to 10 hops.
func clipCounter(name string, v int64) int64 {
	if name == "upgrade.hops" {
		return min(v, 10)
	}
	return min(v, 1)
}

// noiser perturbs figures with a secret drawn when the collector starts.
type noiser struct {
	epsilon float64
	secret  []byte
}

func newNoiser(epsilon float64) *noiser {
	if epsilon <= 0 {
		return nil
	}
	n := &noiser{epsilon: epsilon, secret: make([]byte, 32)}
	rand.Read(n.secret)
	return n
}

// info is what the summary says of the noise.
func (n *noiser) info() *Noise {
	if n == nil {
		return nil
	}
	return &Noise{Epsilon: n.epsilon, Scale: 1 / n.epsilon}
}

// figure is v with noise of scale sensitivity/ε, rounded and not below 0;
// key names the cell and the figure.
func (n *noiser) figure(key string, v, sensitivity int64) int64 {
	m := hmac.New(sha256.New, n.secret)
	fmt.Fprintf(m, "%s\x00%d", key, v)
	sum := m.Sum(nil)
	// u uniform in (-1/2, 1/2), never ±1/2.
	u := (float64(binary.BigEndian.Uint64(sum)>>11)+0.5)/(1<<53) - 0.5
	b := float64(sensitivity) / n.epsilon
	x := -b * math.Copysign(math.Log(1-2*math.Abs(u)), u)
	return max(0, int64(math.Round(float64(v)+x)))
}

// cells returns the shown cells with noisy figures.
func (n *noiser) cells(cells []Cell) []Cell {
	if n == nil {
		return cells
	}
	out := make([]Cell, len(cells))
	for i, c := range cells {
		out[i] = c
		if c.Suppressed {
			continue
		}
		key := c.Program + "\x00" + c.Channel + "\x00" + c.Week + "\x00" + c.Version + "\x00"
		out[i].Reports = n.figure(key+"reports", c.Reports, 1)
		if !c.InstallsWithheld {
			out[i].Installs = n.figure(key+"installs", c.Installs, 1)
		}
		out[i].Networks = n.figure(key+"networks", c.Networks, 1)
		if c.Counters != nil {
			out[i].Counters = map[string]int64{}
			for name, v := range c.Counters {
				out[i].Counters[name] = n.figure(key+name, v, clipCounter(name, math.MaxInt64))
			}
		}
	}
	return out
}
