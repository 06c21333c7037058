//go:build ignore

// Zero-install entry point: `go run magefile.go <target>` works with only Go
// installed. The targets live in magefiles/.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
