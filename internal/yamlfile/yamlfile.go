// Package yamlfile decodes relcheck's YAML settings files strictly: an
// unknown key (with the closest known one suggested), a value of the wrong
// shape or a second document is a *config.Error naming the file, line and
// dotted key, so a typo never silently disables a check.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/config"
)

// Decode decodes data (read from the file name) into v, a pointer to a
// struct whose fields carry yaml tags and already hold the defaults. It
// returns the document's root node for LineOf, nil when the document is
// empty (v is then left as it is).
func Decode(name string, data []byte, v any) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &config.Error{File: name, Line: extra.Line, Msg: "more than one YAML document; " + name + " holds one"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if err := checkKeys(name, root, reflect.TypeOf(v), ""); err != nil {
		return nil, err
	}
	if err := root.Decode(v); err != nil {
		return nil, yamlError(name, err)
	}
	return root, nil
}

// Lines returns the line of each item of the list at a path of mapping
// keys (for messages about list entries), nil when there is none.
func Lines(root *yaml.Node, keys ...string) []int {
	n := Lookup(root, keys...)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	lines := make([]int, len(n.Content))
	for i, item := range n.Content {
		lines[i] = item.Line
	}
	return lines
}

// yamlError turns a yaml.v3 error ("yaml: line 3: …") into an *config.Error.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return parseYAMLMsg(name, te.Errors[0])
	}
	return parseYAMLMsg(name, err.Error())
}

func parseYAMLMsg(name, msg string) *config.Error {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "found character that cannot start any token") {
		msg += " (tabs cannot indent YAML: use spaces)"
	}
	e := &config.Error{File: name, Msg: msg}
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				e.Line = n
				e.Msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return e
}

// checkKeys walks a mapping node against the yaml tags of t and reports the
// first key that t does not have, or a value of the wrong shape.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(yaml.Node{}) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return &config.Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a mapping of keys, got %s", kindName(n))}
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if s := config.Suggest(k.Value, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				} else {
					msg += fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
				}
				return &config.Error{File: file, Line: k.Line, Key: key, Msg: msg}
			}
			if seen[k.Value] {
				return &config.Error{File: file, Line: k.Line, Key: key, Msg: "key given twice"}
			}
			seen[k.Value] = true
			if err := checkKeys(file, v, f.Type, key); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return &config.Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a list, got %s", kindName(n))}
		}
		for i, item := range n.Content {
			if err := checkKeys(file, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &config.Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a mapping, got %s", kindName(n))}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return &config.Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a single value, got %s", kindName(n))}
		}
		var probe = reflect.New(t)
		if err := n.Decode(probe.Interface()); err != nil {
			msg := fmt.Sprintf("%q is not a valid %s", n.Value, typeName(t))
			if _, ok := probe.Interface().(yaml.Unmarshaler); ok {
				msg = err.Error()
			}
			return &config.Error{File: file, Line: n.Line, Key: path, Msg: msg}
		}
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.String:
		return "string"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Lookup finds the value node at a path of mapping keys.
func Lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		// "slis[2]": the key, then the list's item.
		index := -1
		if open := strings.IndexByte(k, '['); open > 0 && strings.HasSuffix(k, "]") {
			if i, err := strconv.Atoi(k[open+1 : len(k)-1]); err == nil {
				k, index = k[:open], i
			}
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
		if index >= 0 {
			if n == nil || n.Kind != yaml.SequenceNode || index >= len(n.Content) {
				return nil
			}
			n = n.Content[index]
		}
	}
	return n
}

// LineOf returns the line of the value at a dotted key path, or 0.
func LineOf(root *yaml.Node, path string) int {
	if n := Lookup(root, strings.Split(path, ".")...); n != nil {
		return n.Line
	}
	return 0
}
