package telemetry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"net/http"
	"sync"
	"time"
)

// networksCounter is the cell counter that counts, per day, the distinct
// source networks the cell's reports came from: what the shared figures
// rest on. Reported counter names cannot start with "_".
const networksCounter = "_networks"

// DefaultPerNetworkDay is how many reports one source network may have
// counted per day: forging figures takes many networks, not many reports.
const DefaultPerNetworkDay = 20

// clientNetwork is the network a request comes from: the /24 of an IPv4
// address, the /48 of an IPv6 one (one site's usual share).
func clientNetwork(req *http.Request) string { return remotePrefix(req, 24, 48) }

// remotePrefix is the request's address masked to its first v4 bits
// (IPv4) or v6 bits (IPv6); the address as given when it does not parse.
func remotePrefix(req *http.Request, v4, v6 int) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.Mask(net.CIDRMask(v4, 32)).String()
	}
	return ip.Mask(net.CIDRMask(v6, 128)).String()
}

// keyed is s as an HMAC with secret: how an address is held in memory.
func keyed(secret []byte, s string) [32]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// netQuota counts the reports of each source network today, in memory
// only: networks are keyed by an HMAC with a salt drawn each day, and the
// counts are dropped with it, so no address outlives its day, on disk or
// in memory.
type netQuota struct {
	perDay int
	mu     sync.Mutex
	day    string
	salt   []byte
	counts map[[32]byte]int
}

func newNetQuota(perDay int) *netQuota { return &netQuota{perDay: perDay} }

// take counts a report of network at now. It says whether the report may
// be counted, and whether it is the network's first today.
func (q *netQuota) take(network string, now time.Time) (ok, first bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if day := now.UTC().Format("2006-01-02"); day != q.day {
		q.day, q.salt, q.counts = day, make([]byte, 32), map[[32]byte]int{}
		rand.Read(q.salt)
	}
	k := keyed(q.salt, network)
	n := q.counts[k]
	if q.perDay > 0 && n >= q.perDay {
		return false, false
	}
	q.counts[k] = n + 1
	return true, n == 0
}
