// semver-oracle answers, for each line "CONSTRAINT<TAB>VERSION" on stdin, what
// github.com/Masterminds/semver/v3 says: "true" or "false" when both parse, "badversion" when
// NewVersion refuses the version, "badconstraint" when NewConstraint refuses the constraint.
// A line "VERSION<TAB>VERSION" after "compare" answers -1, 0 or 1 (Version.Compare).
//
// It is the judge of src/policy/semver.rs, a port of that library (tests/tags.rs), and is
// built from the same version registry-image-resource v1.18.0 pins.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	compare := false
	for in.Scan() {
		line := in.Text()
		if line == "compare" {
			compare = true
			continue
		}
		left, right, _ := strings.Cut(line, "\t")
		if compare {
			a, errA := semver.NewVersion(left)
			b, errB := semver.NewVersion(right)
			if errA != nil || errB != nil {
				fmt.Fprintln(out, "badversion")
				continue
			}
			fmt.Fprintln(out, a.Compare(b))
			continue
		}
		c, err := semver.NewConstraint(left)
		if err != nil {
			fmt.Fprintln(out, "badconstraint")
			continue
		}
		v, err := semver.NewVersion(right)
		if err != nil {
			fmt.Fprintln(out, "badversion")
			continue
		}
		fmt.Fprintln(out, c.Check(v))
	}
}
