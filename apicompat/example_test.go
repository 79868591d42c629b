package apicompat_test

import (
	"fmt"

	"github.com/relcheck/relcheck/apicompat"
)

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
	// line 1: "func Parse()" is not a feature line (want "pkg PATH, ...")
}
