package channels

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Trust remembers, per repository and channel, the newest head a client
// has accepted, so that an older one is refused: whoever serves a
// repository cannot roll a channel back to a head that was once valid.
type Trust struct {
	path string
}

// SeenHead is what Trust keeps of an accepted head.
type SeenHead struct {
	Project string    `json:"project,omitempty"`
	Epoch   uint64    `json:"epoch"`
	Seq     uint64    `json:"seq"`
	Digest  string    `json:"digest"`
	Seen    time.Time `json:"seen"`
}

// OpenTrust keeps its state in dir/heads.json.
func OpenTrust(dir string) *Trust {
	return &Trust{path: filepath.Join(dir, "heads.json")}
}

func (t *Trust) load() (map[string]SeenHead, error) {
	m := map[string]SeenHead{}
	raw, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %v (delete it to trust the next head you see)", t.path, err)
	}
	return m, nil
}

func trustKey(repo, channel string) string { return repo + "#" + channel }

// Check refuses h when a newer head of the same repository and channel
// was accepted before (rollback), or the same seq with other content.
func (t *Trust) Check(repo string, h *Head, digest string) error {
	m, err := t.load()
	if err != nil {
		return err
	}
	// One repository holds one project: a head of another project
	// (signed by a key several projects share) is not this one's.
	for k, s := range m {
		if strings.HasPrefix(k, repo+"#") && s.Project != "" && s.Project != h.Project {
			return verifyErrorf("the %s head of %s is of project %q, but this repository's heads were of %q", h.Channel, repo, h.Project, s.Project)
		}
	}
	s, ok := m[trustKey(repo, h.Channel)]
	if !ok {
		return nil
	}
	switch {
	case h.Epoch < s.Epoch || (h.Epoch == s.Epoch && h.Seq < s.Seq):
		return verifyErrorf("the %s head of %s has seq %d, older than seq %d seen on %s: refusing a rollback of the channel",
			h.Channel, repo, h.Seq, s.Seq, s.Seen.UTC().Format(time.RFC3339))
	case h.Epoch == s.Epoch && h.Seq == s.Seq && s.Digest != "" && digest != s.Digest:
		return verifyErrorf("the %s head of %s changed without a new seq (%d): refusing it; a publisher racing another writes the next seq shortly", h.Channel, repo, h.Seq)
	}
	return nil
}

// Last is the newest head recorded for a repository's channel.
func (t *Trust) Last(repo, channel string) (SeenHead, bool, error) {
	m, err := t.load()
	if err != nil {
		return SeenHead{}, false, err
	}
	s, ok := m[trustKey(repo, channel)]
	return s, ok, nil
}

// Record remembers h as the newest accepted head.
func (t *Trust) Record(repo string, h *Head, digest string, now time.Time) error {
	m, err := t.load()
	if err != nil {
		return err
	}
	k := trustKey(repo, h.Channel)
	if s, ok := m[k]; ok && (s.Epoch > h.Epoch || (s.Epoch == h.Epoch && s.Seq >= h.Seq)) {
		return nil
	}
	m[k] = SeenHead{Project: h.Project, Epoch: h.Epoch, Seq: h.Seq, Digest: digest, Seen: now.UTC()}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o755); err != nil {
		return err
	}
	return writeAtomic(t.path, raw, 0o644)
}
