package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRedisCounts: -redis-compare's counts of a redis-server the tool
// starts. Three script calls sent in one write, each making one command
// (PING), count 3 script calls and 7 commands (the three, the PINGs and the
// first reading's INFO); the reads are the write's and the second INFO's,
// and, if Redis saw them closed by then, the first INFO's connection's and
// this one's (each close is a read): 2 to 4.
func TestRedisCounts(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_REDIS") != "" {
			t.Fatal("GATEHOUSE_REQUIRE_REDIS is set and redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH")
	}
	rs, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	before, err := rs.counts()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", rs.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	eval := "*3\r\n$4\r\nEVAL\r\n$25\r\nreturn redis.call('PING')\r\n$1\r\n0\r\n"
	if _, err := c.Write([]byte(strings.Repeat(eval, 3))); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i := range 3 {
		if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
			t.Fatalf("reply %d: %q %v, want +PONG", i+1, line, err)
		}
	}
	c.Close()
	after, err := rs.counts()
	if err != nil {
		t.Fatal(err)
	}
	scripts, commands, reads := after.scripts-before.scripts, after.commands-before.commands, after.reads-before.reads
	if scripts != 3 || commands != 7 || reads < 2 || reads > 4 {
		t.Errorf("counted %d script calls, %d commands, %d reads; want 3, 7 and 2 to 4", scripts, commands, reads)
	}
}
