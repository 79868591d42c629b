package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
)

const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	// sarifFingerprint is the partialFingerprints key; bump its version if
	// the hashed fields ever change, so old alerts are not matched wrongly.
	sarifFingerprint = "relcheck/v1"
	// sarifAnchor is the file a result without a location is attached to.
	// GitHub code scanning rejects the whole upload when one result has no
	// physical location, and every Go module has a go.mod at its root.
	sarifAnchor = "go.mod"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string       `json:"id"`
	ShortDescription     sarifMessage `json:"shortDescription"`
	DefaultConfiguration sarifConfig  `json:"defaultConfiguration"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string       `json:"level"`
	Message sarifMessage `json:"message"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          *sarifProperties   `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

type sarifProperties struct {
	Check  string `json:"check"`
	Symbol string `json:"symbol,omitempty"`
}

// renderSARIF writes the report as a SARIF 2.1.0 log with one run, in the
// subset GitHub code scanning accepts. The output is deterministic.
//
//   - tool.driver.rules holds one rule per distinct rule id, sorted by id;
//     its level is the most severe level any finding of that rule has.
//   - Every finding becomes a result, suppressed ones with a suppression of
//     kind "external" whose justification is the reason.
//   - Every result has exactly one physical location, because GitHub rejects
//     the whole file otherwise: the finding's file, relative to %SRCROOT%,
//     at its line (line 1 when the finding names a file but no line); a
//     finding without a location is anchored at go.mod, line 1, and keeps
//     its symbol in properties.
//   - partialFingerprints["relcheck/v1"] hashes rule, symbol and file (not
//     the line or message, which change from commit to commit), so an alert
//     follows its finding across runs.
//   - An errored check makes invocations[0].executionSuccessful false and
//     adds an error notification; a skipped check adds a note.
func renderSARIF(w io.Writer, r *Report, opts Options) error {
	cs := checks(r)

	ruleLevel := map[string]string{}
	for _, c := range cs {
		for _, f := range c.Findings {
			l := sarifLevel(f.Severity)
			if old, ok := ruleLevel[f.Rule]; !ok || levelRank(l) < levelRank(old) {
				ruleLevel[f.Rule] = l
			}
		}
	}
	ids := make([]string, 0, len(ruleLevel))
	for id := range ruleLevel {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	rules := make([]sarifRule, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
		rules[i] = sarifRule{
			ID:                   id,
			ShortDescription:     sarifMessage{Text: ruleDescription(id)},
			DefaultConfiguration: sarifConfig{Level: ruleLevel[id]},
		}
	}

	inv := sarifInvocation{ExecutionSuccessful: true}
	results := []sarifResult{}
	for _, c := range cs {
		switch c.Status {
		case StatusError:
			inv.ExecutionSuccessful = false
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
				Level:   "error",
				Message: sarifMessage{Text: fmt.Sprintf("check %s errored: %s", c.Name, orNone(c.Summary, "no details"))},
			})
		case StatusSkip:
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
				Level:   "note",
				Message: sarifMessage{Text: fmt.Sprintf("check %s skipped: %s", c.Name, orNone(c.Summary, "no reason given"))},
			})
		}
		for _, f := range c.Findings {
			results = append(results, sarifFromFinding(c.Name, f, index[f.Rule]))
		}
	}

	log := sarifLog{
		Schema:  sarifSchema,
		Version: sarifVersion,
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           "relcheck",
				InformationURI: "https://github.com/relcheck/relcheck",
				Version:        opts.ToolVersion,
				Rules:          rules,
			}},
			Invocations: []sarifInvocation{inv},
			Results:     results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&log); err != nil {
		return fmt.Errorf("encoding SARIF report: %w", err)
	}
	return nil
}

func sarifFromFinding(check string, f Finding, ruleIndex int) sarifResult {
	file, line := sarifAnchor, 1
	fpFile := ""
	if f.Location != nil && f.Location.File != "" {
		file = f.Location.File
		fpFile = f.Location.File
		if f.Location.Line > 0 {
			line = f.Location.Line
		}
	}
	text := f.Message
	if f.Fix != "" {
		text += "\nfix: " + f.Fix
	}
	res := sarifResult{
		RuleID:    f.Rule,
		RuleIndex: ruleIndex,
		Level:     sarifLevel(f.Severity),
		Message:   sarifMessage{Text: text},
		Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
			ArtifactLocation: sarifArtifactLocation{URI: sarifURI(file), URIBaseID: "%SRCROOT%"},
			Region:           sarifRegion{StartLine: line},
		}}},
		PartialFingerprints: map[string]string{sarifFingerprint: fingerprint(f.Rule, f.Symbol, fpFile)},
		Properties:          &sarifProperties{Check: check, Symbol: f.Symbol},
	}
	if f.Suppressed != "" {
		res.Suppressions = []sarifSuppression{{Kind: "external", Justification: f.Suppressed}}
	}
	return res
}

func sarifLevel(s Severity) string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "note"
}

func levelRank(l string) int {
	switch l {
	case "error":
		return 0
	case "warning":
		return 1
	}
	return 2
}

// sarifURI turns a repository-relative path into a relative URI reference:
// forward slashes, no leading "./", each segment percent-encoded.
func sarifURI(path string) string {
	path = strings.TrimPrefix(strings.ReplaceAll(path, `\`, "/"), "./")
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// fingerprint is a stable hash identifying a finding across commits.
func fingerprint(rule, symbol, file string) string {
	sum := sha256.Sum256([]byte(rule + "\x00" + symbol + "\x00" + file))
	return hex.EncodeToString(sum[:16])
}

// ruleDescriptions are the short descriptions of the rules DESIGN.md
// requires; SARIF consumers show them as the alert title.
var ruleDescriptions = map[string]string{
	"api/incompatible":                 "Incompatible API change the version policy does not allow",
	"api/removed-without-deprecation":  "Exported identifier removed without a prior Deprecated notice",
	"api/deprecation-window":           "Deprecated identifier removed before the deprecation window ended",
	"api/report-mismatch":              "API differs from the committed API report file",
	"api/deprecation-hint":             "Deprecation notice does not say what to use instead",
	"api/package-broken":               "Package does not type-check, so its API was not fully compared",
	"api/suppression-expired":          "An api.ignore suppression has expired",
	"api/tag-version":                  "Release tag is lower than the API changes require",
	"migrations/modified":              "Migration that exists at base was changed",
	"migrations/order":                 "New migration version is out of order or collides",
	"migrations/failed":                "Migration does not apply",
	"migrations/irreversible":          "Migration cannot be reversed to the same schema",
	"migrations/destructive":           "Migration drops a table or column not declared deprecated",
	"migrations/backward-incompatible": "Migration breaks the previous release",
	"migrations/locking":               "Migration takes a blocking lock where a safe multi-step form exists",
	"migrations/budget":                "Migration blocking time exceeds its share of the error budget",
	"perf/regression":                  "Statistically significant performance regression",
	"perf/slo":                         "Scenario violates a service level objective",
}

func ruleDescription(id string) string {
	if d, ok := ruleDescriptions[id]; ok {
		return d
	}
	return id
}
