package apicompat_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/apicompat"
)

// git runs git in dir, with a fixed identity.
func git(dir string, args ...string) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=ex", "-c", "user.email=ex@example.com", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// The API gate compares the module at a release tag with the working tree:
// here v1.0.0 exported Title and Upper, and the tree removes Upper, which
// needs a major version.
func ExampleCheck() {
	dir, err := os.MkdirTemp("", "relcheck-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("go.mod", "module example.com/textkit\n\ngo 1.22\n")
	write("textkit.go", "package textkit\n\nfunc Title(s string) string { return s }\n\nfunc Upper(s string) string { return s }\n")
	git(dir, "init", "-q")
	git(dir, "add", "-A")
	git(dir, "commit", "-qm", "v1.0.0")
	git(dir, "tag", "v1.0.0")
	write("textkit.go", "package textkit\n\nfunc Title(s string) string { return s }\n")

	res, err := apicompat.Check(context.Background(), apicompat.Options{
		Root: dir, ModDir: dir,
		Base: "v1.0.0", BaseVersion: semver.MustParse("1.0.0"),
		Config: apicompat.DefaultConfig(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bump:", res.Version.Bump)
	for _, f := range res.Check.Findings {
		fmt.Printf("%s %s: %s\n", f.Severity, f.Rule, f.Symbol)
	}
	// Output:
	// bump: major
	// error api/incompatible: example.com/textkit.Upper
}

func ExampleParseReport() {
	lines, err := apicompat.ParseReport([]byte(`# API of example.com/lib
pkg example.com/lib, func Parse(string) (int, error)
pkg example.com/lib, func Old() //deprecated
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range lines {
		fmt.Println(l.Line, l.Text)
	}
	_, err = apicompat.ParseReport([]byte("func Parse()\n"))
	fmt.Println(err)
	// Output:
	// 2 pkg example.com/lib, func Parse(string) (int, error)
	// 3 pkg example.com/lib, func Old() //deprecated
	// line 1: "func Parse()" is not a feature line (want "pkg PATH, ..." or "http DOCUMENT, ...")
}
