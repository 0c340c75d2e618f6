// Package browsertest drives a headless Chromium for the tests of the web
// console: it fails a test on any console error or uncaught exception of
// the pages it shows, and saves screenshots under the test's artifact
// directory (go test -artifacts). Only tests import it.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium on one tab, which fails the test on any
// console error or uncaught exception of the pages it shows.
type Browser struct {
	// T is the test that failures go to: set it to each subtest's.
	T   *testing.T
	ctx context.Context
	// Dir is where screenshots go.
	Dir string

	mu     sync.Mutex
	errors []string
}

// New starts Debian's chromium (never a downloaded browser) for the
// test, at 1280×900, for at most a minute; screenshots go to the test's
// artifact directory.
func New(t *testing.T) *Browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium package (apt-get install chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	b := &Browser{T: t, ctx: ctx, Dir: t.ArtifactDir()}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				b.errors = append(b.errors, "console error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.errors = append(b.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Run runs actions, then fails the test on the page's errors.
func (b *Browser) Run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.T.Fatalf("%s: %v", what, err)
	}
	b.PageErrors(what)
}

// PageErrors fails the test with the page's errors since the last call.
func (b *Browser) PageErrors(what string) {
	b.T.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.T.Errorf("%s: %s", what, e)
	}
	b.errors = nil
}

// Open loads url and waits until the page has rendered its data.
func (b *Browser) Open(url string) {
	b.T.Helper()
	b.Run("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`main[data-ready="true"]`)))
}

// Text returns the text of the element sel selects.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.T.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// Evaluate returns the value of a JavaScript expression on the page.
func Evaluate[T any](b *Browser, expr string) T {
	b.T.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.T.Fatalf("evaluate %s: %v", expr, err)
	}
	b.PageErrors(expr)
	return v
}

// Screenshot saves the whole page as Dir/name.png.
func (b *Browser) Screenshot(name string) {
	b.T.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.T.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, name+".png"), png, 0o644); err != nil {
		b.T.Fatal(err)
	}
}
