package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sseClient is a Server-Sent Events client in Python's standard library
// alone, so that the stream is read by something other than our Go code.
// It prints "ready" once the stream has started, then one line per event
// message, "<id> <streamId>@<version>", and stops after n of them.
const sseClient = `import json, sys, urllib.request
url, n, last = sys.argv[1], int(sys.argv[2]), sys.argv[3]
req = urllib.request.Request(url)
if last:
    req.add_header("Last-Event-ID", last)
with urllib.request.urlopen(req) as resp:
    assert resp.headers["Content-Type"] == "text/event-stream", resp.headers["Content-Type"]
    msg, seen = {}, 0
    for raw in resp:
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            if line == ": subscribed":
                print("ready", flush=True)
            continue
        if line:
            field, _, value = line.partition(": ")
            msg[field] = value
            continue
        if not msg:
            continue
        if "event" in msg:
            print("error", msg.get("data"), flush=True)
            sys.exit(1)
        e = json.loads(msg["data"])
        print(msg["id"], "%s@%d" % (e["streamId"], e["version"]), flush=True)
        msg, seen = {}, seen + 1
        if seen == n:
            break
`

// runSSEClient starts the client; lines gives its output line by line.
func runSSEClient(t *testing.T, url string, n int, lastEventID string) (lines *bufio.Scanner, wait func()) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "sse.py")
	if err := os.WriteFile(script, []byte(sseClient), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script, url, fmt.Sprint(n), lastEventID)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return bufio.NewScanner(out), func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("the Python SSE client: %v", err)
		}
	}
}

func TestAnIndependentSSEClientFollowsACategoryAndResumes(t *testing.T) {
	w, _, _ := startWriter(t)
	appendOne := func(stream string) {
		t.Helper()
		body := fmt.Sprintf(`{"expectedVersion": -1, "events": [%s]}`, strings.Replace(orderCreated, "a1b2c3d4", stream, 1))
		if status, resp := post(t, w.url+"/v1/streams/Order-"+stream+"/events", body); status != 201 {
			t.Fatalf("append = %d %v", status, resp)
		}
	}
	for _, s := range []string{"a", "b", "a"} {
		appendOne(s)
	}
	lines, wait := runSSEClient(t, w.url+"/v1/categories/Order/subscribe", 5, "")
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the client printed %q, want ready", lines.Text())
	}
	appendOne("c") // live, after the catch-up
	appendOne("a")
	var ids, got []string
	for lines.Scan() {
		id, event, _ := strings.Cut(lines.Text(), " ")
		ids, got = append(ids, id), append(got, event)
	}
	wait()
	want := []string{"Order-a@1", "Order-b@1", "Order-a@2", "Order-c@1", "Order-a@3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the Python client read %v, want %v", got, want)
	}

	lines, wait = runSSEClient(t, w.url+"/v1/categories/Order/subscribe", 2, ids[2])
	lines.Scan() // ready
	got = nil
	for lines.Scan() {
		_, event, _ := strings.Cut(lines.Text(), " ")
		got = append(got, event)
	}
	wait()
	if strings.Join(got, " ") != "Order-c@1 Order-a@3" {
		t.Errorf("resumed with Last-Event-ID after the third event: read %v, want [Order-c@1 Order-a@3]", got)
	}
}
