package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// walkStep is one command of the README's walkthrough and the output shown
// under it.
type walkStep struct {
	line int
	cmd  string
	want string
}

// readmeWalkthrough reads the section "## A two-minute walkthrough" of the
// README: its first ```sh block sets the variables, and each line of a
// ```console block that starts with "$ " is a command (continued by a trailing
// backslash), followed by its output.
func readmeWalkthrough(t *testing.T, readme string) (setup string, steps []walkStep) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	var (
		in, inSetup, inConsole, haveSetup bool
		setupLines, out                   []string
		cur                               *walkStep
		continued                         bool
	)
	flush := func() {
		if cur != nil {
			cur.want = strings.Join(out, "\n")
			steps = append(steps, *cur)
			cur, out = nil, nil
		}
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## A two-minute walkthrough"
		case !in:
		case line == "```sh" && !haveSetup:
			inSetup, haveSetup = true, true
		case line == "```console":
			inConsole = true
		case line == "```":
			flush()
			inSetup, inConsole = false, false
		case inSetup:
			setupLines = append(setupLines, line)
		case inConsole && continued:
			cur.cmd += "\n" + line
			continued = strings.HasSuffix(line, `\`)
		case inConsole && strings.HasPrefix(line, "$ "):
			flush()
			cur = &walkStep{line: n, cmd: strings.TrimPrefix(line, "$ ")}
			continued = strings.HasSuffix(line, `\`)
		case inConsole && cur != nil:
			out = append(out, line)
		}
	}
	return strings.Join(setupLines, "\n"), steps
}

var (
	requestIDs = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// The header lines the README says it leaves out.
	unshownHeader = regexp.MustCompile(`(?i)^(Date|Content-Length|Cache-Control|X-Content-Type-Options):`)
)

// normalise makes output comparable: line endings, trailing blanks, the
// header lines not shown, and request ids (random).
func normalise(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if unshownHeader.MatchString(l) {
			continue
		}
		lines = append(lines, requestIDs.ReplaceAllString(strings.TrimRight(l, " \t"), "<id>"))
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// retryAfterSlack is how far a shown Retry-After may be above the one got:
// the seconds that pass between the requests of a step on a busy machine.
const retryAfterSlack = 3

func sameOutput(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] == want[i] {
			continue
		}
		g, okG := strings.CutPrefix(got[i], "Retry-After: ")
		w, okW := strings.CutPrefix(want[i], "Retry-After: ")
		gn, errG := strconv.Atoi(g)
		wn, errW := strconv.Atoi(w)
		if okG && okW && errG == nil && errW == nil && gn <= wn && gn >= wn-retryAfterSlack {
			continue
		}
		return false
	}
	return true
}

// TestREADMEWalkthrough runs the README's walkthrough, command by command in
// the order shown, with sh and curl against the example, and compares
// what each prints with the output the README shows under it.
func TestREADMEWalkthrough(t *testing.T) {
	_, err := exec.LookPath("curl")
	if err == nil {
		_, err = exec.LookPath("sh")
	}
	if err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_CURL") == "1" {
			t.Fatalf("GATEHOUSE_REQUIRE_CURL=1 but: %v", err)
		}
		t.Skipf("the walkthrough needs sh and curl: %v", err)
	}

	setup, steps := readmeWalkthrough(t, "../README.md")
	if len(steps) < 10 || !strings.Contains(setup, "FULL=") {
		t.Fatalf("the README's walkthrough has %d steps and setup %q; the section or its format changed", len(steps), setup)
	}
	// The walkthrough shows every refusal of the contract.
	var shown strings.Builder
	for _, s := range steps {
		shown.WriteString(s.want)
	}
	for _, msg := range []string{"HTTP/1.1 200 OK", "No API key provided", "Invalid or inactive API key",
		"Your API key does not have access to this product", "Product not found", "Missing required input field",
		"Rate limit exceeded", "Retry-After:", "Upstream service authentication failed", "Upstream service temporarily unavailable"} {
		if !strings.Contains(shown.String(), msg) {
			t.Errorf("the walkthrough shows no %q", msg)
		}
	}

	addr := start(t)
	dir := t.TempDir()
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", setup+"\n"+strings.ReplaceAll(s.cmd, "localhost:8080", addr))
		cmd.Dir = dir
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Errorf("README.md:%d: %s\n%v", s.line, s.cmd, err)
			continue
		}
		got, want := normalise(string(out)), normalise(s.want)
		if !sameOutput(got, want) {
			t.Errorf("README.md:%d: %s\ngot:\n%s\nthe README shows:\n%s", s.line, s.cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
