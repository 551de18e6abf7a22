package admin_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// devtools drives a headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: commands on fd 3, answers on fd 4, each message
// ended by a NUL byte), so a test can open a page and run a script in it.
type devtools struct {
	t      *testing.T
	in     *os.File // to Chromium
	mu     sync.Mutex
	nextID int
	wait   map[int]chan devtoolsAnswer
}

type devtoolsAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startDevtools starts Chromium with a fresh profile and stops it when the
// test ends.
func startDevtools(t *testing.T) *devtools {
	t.Helper()
	needChromium(t)
	toChrome, chromeIn, err := os.Pipe()
	require.NoError(t, err)
	chromeOut, fromChrome, err := os.Pipe()
	require.NoError(t, err)
	// A profile of its own, removed once Chromium and its helper processes
	// have let go of it.
	profile, err := os.MkdirTemp("", "devtools-")
	require.NoError(t, err)
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	// A process group, so that its helpers (renderers, crash handler) can
	// be stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	toChrome.Close()
	fromChrome.Close()
	d := &devtools{t: t, in: chromeIn, wait: map[int]chan devtoolsAnswer{}}
	go d.read(chromeOut)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// Closing the pipe asks Chromium to quit; it gets a while to do so.
		chromeIn.Close()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
		chromeOut.Close()
		for i := 0; ; i++ {
			if err := os.RemoveAll(profile); err == nil || i == 20 {
				if err != nil {
					t.Logf("chromium profile %s left behind: %v", profile, err)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return d
}

func (d *devtools) read(out *os.File) {
	r := bufio.NewReader(out)
	for {
		msg, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID int `json:"id"`
			devtoolsAnswer
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		d.mu.Lock()
		ch := d.wait[m.ID]
		delete(d.wait, m.ID)
		d.mu.Unlock()
		if ch != nil {
			ch <- m.devtoolsAnswer
		}
	}
}

// call sends one command (to a page when session is set) and decodes its
// result into out.
func (d *devtools) call(session, method string, params, out any) {
	d.t.Helper()
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	ch := make(chan devtoolsAnswer, 1)
	d.wait[id] = ch
	d.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, err := json.Marshal(msg)
	require.NoError(d.t, err)
	_, err = d.in.Write(append(b, 0))
	require.NoError(d.t, err)
	select {
	case a := <-ch:
		if a.Error != nil {
			d.t.Fatalf("devtools %s: %s", method, a.Error.Message)
		}
		if out != nil {
			require.NoError(d.t, json.Unmarshal(a.Result, out))
		}
	case <-time.After(60 * time.Second):
		d.t.Fatalf("devtools %s: no answer from chromium", method)
	}
}

// open loads url in a new tab and waits until the page has loaded; it
// returns the session to run scripts in.
func (d *devtools) open(url string) string {
	d.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	d.call("", "Target.createTarget", map[string]any{"url": url}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	d.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	deadline := time.Now().Add(30 * time.Second)
	// Until the navigation commits, the tab shows about:blank, complete.
	for d.eval(attached.SessionID, `location.href !== "about:blank" && document.readyState === "complete"`) != "true" {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s did not load", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return attached.SessionID
}

// eval runs expression in the page, awaits it when it is a promise, and
// returns its value as text (a thrown error as "error: ...").
func (d *devtools) eval(session, expression string) string {
	d.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	d.call(session, "Runtime.evaluate", map[string]any{"expression": expression, "awaitPromise": true, "returnByValue": true}, &res)
	if e := res.ExceptionDetails; e != nil {
		return "error: " + e.Text + " " + e.Exception.Description
	}
	return fmt.Sprint(res.Result.Value)
}
