//go:build drills

package drill

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/enginetest"
	"github.com/cleantrack/jobs/internal/pgbouncertest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// ChaosOptions steer `make chaos`.
type ChaosOptions struct {
	Dir      string        // binaries, servers and logs, relative to the repository root
	Duration time.Duration // of the load and the faults; the drain comes after
	Accounts int           // accounts receiving events
	Rate     int           // new events per second
	Seed     uint64        // of the fault and load choices; 0 picks one
}

// chaos is one run: the servers, the processes and what the load sent.
type chaos struct {
	c      *Case
	o      ChaosOptions
	out    io.Writer
	rnd    *rand.Rand
	rndMu  sync.Mutex
	pg     *PrivatePG
	pgb    *pgbouncertest.Server
	redis  *enginetest.Sentinel
	resend *resendtest.Server
	env    map[string]string
	webs   []int // ports

	procMu     sync.Mutex
	procs      map[string]*proctest.Proc
	bins       map[string]string
	unexpected map[string][]time.Time // exits nobody caused

	// The load: per account, the period end of its newest event; every
	// event sent, and whether it was accepted.
	loadMu   sync.Mutex
	newest   map[int]time.Time
	events   map[string][]byte
	accepted map[string]bool
	sent     atomic.Int64
	ok       atomic.Int64
	s503     atomic.Int64
	other    atomic.Int64
	faults   map[string]int
	flushed  bool
}

func (ch *chaos) intn(n int) int {
	ch.rndMu.Lock()
	defer ch.rndMu.Unlock()
	return ch.rnd.IntN(n)
}

func (ch *chaos) logf(format string, args ...any) {
	fmt.Fprintf(ch.out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// RunChaos runs the chaos test: Sentinel-backed Redis, PgBouncer in front of
// a private PostgreSQL, two web, three worker and two scheduler processes, a
// steady load of signed webhooks (duplicates, out-of-order pairs), overdue
// scans producing emails through a Resend fake that sometimes answers 429
// and 500, and a fault every 10 to 30 s. After a drain it checks that
// nothing was lost or done twice, prints a ledger and "N passed, M failed",
// and returns the number of failed checks.
func RunChaos(ctx context.Context, o ChaosOptions, out io.Writer) (int, error) {
	root, err := proctest.ModuleRoot()
	if err != nil {
		return 0, err
	}
	if !filepath.IsAbs(o.Dir) {
		o.Dir = filepath.Join(root, o.Dir)
	}
	_ = os.RemoveAll(filepath.Join(o.Dir, "logs"))
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return 0, err
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	w := &World{Root: root, Bin: filepath.Join(o.Dir, "bin"), Dir: o.Dir, Out: out}
	fmt.Fprintf(out, "chaos: building binaries (seed %d, %s of load, %d accounts, %d events/s)\n", o.Seed, o.Duration, o.Accounts, o.Rate)
	if err := proctest.Build(ctx, root, w.Bin); err != nil {
		return 0, err
	}
	pgPort, err := proctest.FreePort()
	if err != nil {
		return 0, err
	}
	if w.PG, err = StartPrivatePG(ctx, o.Dir, pgPort); err != nil {
		return 0, err
	}
	defer w.PG.Stop()
	g, err := enginetest.StartSentinel(ctx, o.Dir, enginetest.SentinelOptions{})
	if err != nil {
		return 0, fmt.Errorf("start sentinel group: %w", err)
	}
	defer g.Stop()
	pgb, err := pgbouncertest.Start(pgbouncertest.Options{Upstream: w.PG.AdminURL(), PoolSize: 20, Install: true, Dir: filepath.Join(o.Dir, "pgbouncer")})
	if err != nil {
		return 0, err
	}
	defer pgb.Stop()
	db, err := bench.CreateDatabase(ctx, w.PG.AdminURL(), "chaos")
	if err != nil {
		return 0, err
	}
	defer db.Drop(context.Background())
	sqlDB, err := db.Open()
	if err != nil {
		return 0, err
	}
	defer sqlDB.Close()
	store, err := postgres.Open(ctx, db.URL)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	fake := resendtest.NewServer()
	defer fake.Close()

	c := &Case{W: w, Name: "chaos", DB: db, SQL: sqlDB, Store: store, Secret: webhookSecret,
		Logs: filepath.Join(o.Dir, "logs"), procs: map[string]*proctest.Proc{}}
	ch := &chaos{c: c, o: o, out: out, rnd: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), pg: w.PG, pgb: pgb, redis: g, resend: fake,
		procs: map[string]*proctest.Proc{}, bins: map[string]string{}, unexpected: map[string][]time.Time{},
		newest: map[int]time.Time{}, events: map[string][]byte{}, accepted: map[string]bool{}, faults: map[string]int{}}
	fmt.Fprintf(out, "chaos: PostgreSQL 127.0.0.1:%d, PgBouncer %s (transaction mode), Redis Sentinel %s, logs in %s\n",
		w.PG.Port, pgb.Addr(), g.URL(), c.Logs)
	defer ch.stopAll()
	if err := ch.setup(ctx); err != nil {
		return 0, err
	}
	ch.run(ctx)
	return ch.verify(ctx), nil
}

// setup seeds the accounts and the equipment that falls overdue during the
// run, and starts the processes.
func (ch *chaos) setup(ctx context.Context) error {
	c := ch.c
	if err := c.SeedAccounts(ctx, "ch", ch.o.Accounts); err != nil {
		return err
	}
	// Equipment never cleaned, on a one-hour interval, created so that one
	// piece falls overdue every few seconds of the load: every overdue scan
	// finds new ones, and each alert is one email.
	var ids []int64
	rows, err := c.SQL.QueryContext(ctx, `SELECT id FROM accounts ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	pieces := int(ch.o.Duration.Seconds()*0.8) / 5
	if pieces < 10 {
		pieces = 10
	}
	start := time.Now()
	for i := 0; i < pieces; i++ {
		acc := ids[i*7%len(ids)]
		loc, err := c.Store.CreateLocation(ctx, acc, fmt.Sprintf("Ward %d", i))
		if err != nil {
			return err
		}
		due := start.Add(time.Duration(float64(ch.o.Duration) * 0.8 * float64(i) / float64(pieces)))
		if _, err := c.Store.CreateEquipment(ctx, postgres.NewEquipment{AccountID: acc, LocationID: loc,
			Name: fmt.Sprintf("Scope %d", i), SerialNumber: fmt.Sprintf("CH-%04d", i), CleaningIntervalHours: 1,
			CreatedAt: due.Add(-time.Hour)}); err != nil {
			return err
		}
	}
	// The fake Resend: one request in twenty rate-limited, one in twenty a 500.
	ch.resend.SetHook(func(int, resendtest.Request) *resendtest.Reply {
		switch n := ch.intn(100); {
		case n < 5:
			return &resendtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "1"}
		case n < 10:
			return &resendtest.Reply{Status: http.StatusInternalServerError}
		}
		return nil
	})
	ch.env = map[string]string{
		"DATABASE_URL":          ch.pgb.URL(c.DB.URL),
		"MIGRATE_DATABASE_URL":  c.DB.URL,
		"DATABASE_MAX_CONNS":    "15",
		"REDIS_URL":             ch.redis.URL(),
		"STRIPE_WEBHOOK_SECRET": c.Secret,
		"WORKER_CONCURRENCY":    "10",
		"LOG_LEVEL":             "info",
		"LOG_FORMAT":            "json",
		"RESEND_API_KEY":        "re_chaos",
		"RESEND_BASE_URL":       ch.resend.URL(),
		"EMAIL_RATE_PER_SECOND": "20",
		"OVERDUE_SCAN_CRON":     "* * * * *",
		"INBOX_REDRIVE_CRON":    "* * * * *",
		"INBOX_REDRIVE_MIN_AGE": "20s",
		"EMAIL_REDRIVE_MIN_AGE": "30s",
		"EMAIL_OUTBOX_DIR":      filepath.Join(c.Logs, "outbox"),
	}
	for i := 1; i <= 2; i++ {
		p, err := proctest.FreePort()
		if err != nil {
			return err
		}
		ch.webs = append(ch.webs, p)
		ch.bins["web-"+strconv.Itoa(i)] = "web"
	}
	for i := 1; i <= 3; i++ {
		ch.bins["worker-"+strconv.Itoa(i)] = "worker"
	}
	for i := 1; i <= 2; i++ {
		ch.bins["scheduler-"+strconv.Itoa(i)] = "scheduler"
	}
	for _, name := range ch.names() {
		if err := ch.start(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (ch *chaos) names() []string {
	var out []string
	for n := range ch.bins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// start starts (or starts again) the named process; a web process must
// answer /healthz within 30 s.
func (ch *chaos) start(ctx context.Context, name string) error {
	env := map[string]string{}
	for k, v := range ch.env {
		env[k] = v
	}
	free := func() string { a, _ := proctest.FreeAddr(); return a }
	env["ADMIN_ADDR"], env["WORKER_METRICS_ADDR"], env["SCHEDULER_METRICS_ADDR"] = free(), free(), free()
	bin := ch.bins[name]
	if bin == "web" {
		i, _ := strconv.Atoi(strings.TrimPrefix(name, "web-"))
		env["PORT"] = strconv.Itoa(ch.webs[i-1])
	}
	p, err := proctest.Start(proctest.Config{Name: name, Path: filepath.Join(ch.c.W.Bin, bin), Env: env, LogDir: ch.c.Logs})
	if err != nil {
		return err
	}
	ch.procMu.Lock()
	ch.procs[name] = p
	ch.procMu.Unlock()
	if bin == "web" {
		return proctest.WaitHTTP(ctx, "http://127.0.0.1:"+env["PORT"]+"/healthz", 30*time.Second, p)
	}
	return nil
}

// supervise restarts, once a second, any process that ended without the run
// killing it, and records the exit: a process that keeps ending is
// crash-looping.
func (ch *chaos) supervise(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, name := range ch.names() {
			ch.procMu.Lock()
			p := ch.procs[name]
			ch.procMu.Unlock()
			if p == nil || !p.Exited() {
				continue
			}
			ch.procMu.Lock()
			ch.unexpected[name] = append(ch.unexpected[name], time.Now())
			ch.procMu.Unlock()
			ch.logf("%s ended by itself (%v); restarting", name, p.Err())
			if err := ch.start(ctx, name); err != nil {
				ch.logf("restart %s: %v", name, err)
			}
		}
	}
}

func (ch *chaos) stopAll() {
	ch.procMu.Lock()
	defer ch.procMu.Unlock()
	for name, p := range ch.procs {
		_ = p.Stop(20 * time.Second)
		delete(ch.procs, name)
	}
}

// event builds account i's event number seq: the first creates the
// subscription (a welcome email), the later ones update it, each with a
// later created time and period end.
func (ch *chaos) event(i, seq int, base time.Time) (string, []byte, time.Time) {
	s := strconv.Itoa(i)
	created := base.Add(time.Duration(seq) * time.Second)
	end := base.AddDate(0, 1, seq)
	typ := "customer.subscription.updated"
	if seq == 0 {
		typ = "customer.subscription.created"
	}
	id := fmt.Sprintf("evt_ch_%d_%d", i, seq)
	return id, stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: typ, ID: id, Created: created, Shape: stripetest.Shapes[(i+seq)%2],
		SubscriptionID: "sub_ch_" + s, CustomerID: "cus_ch_" + s, Status: "active",
		PriceID: "price_trial_monthly", PeriodEnd: end,
	}), end
}

// post sends one event to one of the two web processes, as Stripe would:
// whatever is not a 200 is retried after a pause, up to 60 times.
func (ch *chaos) post(ctx context.Context, id string, body []byte) bool {
	for attempt := 0; attempt < 60 && ctx.Err() == nil; attempt++ {
		port := ch.webs[ch.intn(len(ch.webs))]
		ch.sent.Add(1)
		a := ch.c.PostURL(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/billing/webhooks/stripe/", body)
		switch a.Status {
		case http.StatusOK:
			ch.ok.Add(1)
			ch.loadMu.Lock()
			ch.accepted[id] = true
			ch.loadMu.Unlock()
			return true
		case http.StatusServiceUnavailable:
			ch.s503.Add(1)
		default:
			ch.other.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(500+ch.intn(1500)) * time.Millisecond):
		}
	}
	return false
}

// load sends Rate new events a second until ctx ends: per account an
// increasing sequence, one in ten a duplicate of an earlier one, one in ten
// an out-of-order pair (the later event first).
func (ch *chaos) load(ctx context.Context, wg *sync.WaitGroup) {
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	seq := make([]int, ch.o.Accounts)
	// Every account's subscription is created first, at a steady pace.
	tick := time.NewTicker(time.Second / time.Duration(ch.o.Rate))
	defer tick.Stop()
	send := func(id string, body []byte) {
		wg.Add(1)
		go func() { defer wg.Done(); ch.post(context.WithoutCancel(ctx), id, body) }()
	}
	record := func(i int, id string, body []byte, end time.Time) {
		ch.loadMu.Lock()
		ch.events[id] = body
		if end.After(ch.newest[i]) {
			ch.newest[i] = end
		}
		ch.loadMu.Unlock()
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		i := n % ch.o.Accounts
		if n >= ch.o.Accounts {
			i = ch.intn(ch.o.Accounts)
		}
		switch r := ch.intn(10); {
		case r == 0 && n >= ch.o.Accounts && seq[i] > 0:
			// A duplicate of an event already sent.
			id, body, _ := ch.event(i, ch.intn(seq[i]), base)
			send(id, body)
		case r == 1 && seq[i] > 0:
			// An out-of-order pair: the later event first.
			id1, b1, e1 := ch.event(i, seq[i], base)
			id2, b2, e2 := ch.event(i, seq[i]+1, base)
			seq[i] += 2
			record(i, id1, b1, e1)
			record(i, id2, b2, e2)
			send(id2, b2)
			time.Sleep(50 * time.Millisecond)
			send(id1, b1)
		default:
			id, body, end := ch.event(i, seq[i], base)
			seq[i]++
			record(i, id, body, end)
			send(id, body)
		}
	}
}

// faults injects one fault every 10 to 30 s until ctx ends; the FLUSHALL
// comes once, at the first fault past the middle of the run.
func (ch *chaos) injectFaults(ctx context.Context) {
	half := time.Now().Add(ch.o.Duration / 2)
	var bag []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(10+ch.intn(21)) * time.Second):
		}
		if ctx.Err() != nil {
			return
		}
		// Kinds are drawn from a shuffled bag, so a run of six faults or
		// more meets each kind at least once.
		if len(bag) == 0 {
			bag = []string{"kill", "kill", "kill", "redis-failover", "pgbouncer-restart", "postgres-restart"}
			for i := len(bag) - 1; i > 0; i-- {
				j := ch.intn(i + 1)
				bag[i], bag[j] = bag[j], bag[i]
			}
		}
		kind := bag[0]
		if !ch.flushed && time.Now().After(half) {
			kind, ch.flushed = "redis-flushall", true
		} else {
			bag = bag[1:]
		}
		ch.faults[kind]++
		start := time.Now()
		// A fault that began is carried through (the restart of what it
		// killed) even when the load ends meanwhile.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		var err error
		var what string
		switch kind {
		case "kill":
			names := ch.names()
			name := names[ch.intn(len(names))]
			// Out of the supervisor's sight while it is down: this exit is ours.
			ch.procMu.Lock()
			p := ch.procs[name]
			delete(ch.procs, name)
			ch.procMu.Unlock()
			p.Kill()
			err = ch.start(fctx, name)
			what = "SIGKILL and restart of " + name
		case "redis-failover":
			var took time.Duration
			took, err = ch.redis.Failover(fctx, 60*time.Second)
			what = fmt.Sprintf("Redis primary SIGKILLed; replica promoted in %s", took.Round(100*time.Millisecond))
		case "pgbouncer-restart":
			err = ch.pgb.Restart()
			what = "PgBouncer killed and started again"
		case "postgres-restart":
			err = ch.pg.Restart(fctx)
			what = "PostgreSQL restarted (fast: connections cut)"
		case "redis-flushall":
			rc := ch.redis.Client()
			err = rc.FlushAll(fctx).Err()
			rc.Close()
			what = "FLUSHALL on the Redis primary"
		}
		cancel()
		if err != nil {
			ch.logf("fault %s: %s failed: %v", kind, what, err)
			continue
		}
		ch.logf("fault %s: %s (%s)", kind, what, time.Since(start).Round(100*time.Millisecond))
	}
}

// run drives the load and the faults for Duration, then waits for the
// posts in flight.
func (ch *chaos) run(ctx context.Context) {
	superCtx, stopSuper := context.WithCancel(ctx)
	defer stopSuper()
	go ch.supervise(superCtx)
	loadCtx, stopLoad := context.WithTimeout(ctx, ch.o.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	faultsDone := make(chan struct{})
	go func() { ch.injectFaults(loadCtx); close(faultsDone) }()
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	go func() {
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-progress.C:
				ch.logf("load: %d posted, %d accepted, %d answered 503, %d other; %d applied", ch.sent.Load(), ch.ok.Load(), ch.s503.Load(), ch.other.Load(),
					ch.c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE processed_at IS NOT NULL`))
			}
		}
	}()
	ch.load(loadCtx, &wg)
	<-faultsDone
	ch.logf("load and faults over; waiting for the posts in flight")
	wg.Wait()
}

var enqueuedTaskID = regexp.MustCompile(`"task_id":"([^"]+)"`)

// verify waits for the system to drain, checks every promise, prints the
// ledger and "N passed, M failed", and returns M.
func (ch *chaos) verify(ctx context.Context) int {
	c := ch.c
	ch.loadMu.Lock()
	var sentIDs, acceptedIDs []string
	for id := range ch.events {
		sentIDs = append(sentIDs, id)
	}
	for id := range ch.accepted {
		acceptedIDs = append(acceptedIDs, id)
	}
	newest := ch.newest
	ch.loadMu.Unlock()

	processed := func() int64 {
		return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1::text[]) AND processed_at IS NOT NULL`, pqArray(acceptedIDs))
	}
	current := func() int {
		rows, err := c.SQL.QueryContext(ctx, `SELECT stripe_customer_id, subscription_end_date FROM accounts WHERE stripe_customer_id LIKE 'cus\_ch\_%'`)
		if err != nil {
			return -1
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var cus string
			var end *time.Time
			if rows.Scan(&cus, &end) != nil {
				return -1
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(cus, "cus_ch_"))
			if want, ok := newest[i]; ok && end != nil && end.Equal(want) {
				n++
			}
		}
		return n
	}
	unsent := func() int64 {
		return c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE status NOT IN ('sent', 'suppressed')`)
	}
	unnotified := func() int64 {
		return c.Int(ctx, `SELECT (SELECT count(*) FROM equipment) - (SELECT count(*) FROM alerts WHERE notified_at IS NOT NULL)`)
	}
	start := time.Now()
	drained := c.Until(ctx, 5*time.Minute, func() bool {
		return processed() == int64(len(acceptedIDs)) && current() == len(newest) && unsent() == 0 && unnotified() == 0
	})
	drain := time.Since(start)
	ch.logf("drain: %s (%v)", drain.Round(time.Second), drained)
	// The scans still running may send an email or two: let them land.
	time.Sleep(5 * time.Second)

	var passed, failed int
	check := func(ok bool, format string, args ...any) {
		c.Check(ok, format, args...)
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Fprintln(ch.out, "\nchecks")
	check(drained, "the system drained within 5 minutes of the end of the load (%s)", drain.Round(time.Second))
	check(len(acceptedIDs) == len(sentIDs), "every event was in the end answered 200 (%d of %d; Stripe-style retries after 503s)", len(acceptedIDs), len(sentIDs))
	check(processed() == int64(len(acceptedIDs)), "every event answered 200 was applied (%d of %d)", processed(), len(acceptedIDs))
	check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`) == 0, "no event failed (%d)", c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`))
	check(current() == len(newest), "each account holds its newest event's state, whatever the order and duplicates (%d of %d)", current(), len(newest))

	// Emails: each welcome once per account, each delivery row delivered once.
	delivered := ch.resend.Delivered()
	welcome := map[string]int{}
	perEmail := map[string]int{}
	for _, e := range delivered {
		to := strings.Join(e.To, ",")
		if strings.HasPrefix(e.Subject, "Welcome to CleanTrack") {
			welcome[to]++
		}
		perEmail[e.Key+"|"+to+"|"+e.Subject]++
	}
	twice, welcomeTwice := 0, 0
	for _, n := range perEmail {
		if n > 1 {
			twice++
		}
	}
	for _, n := range welcome {
		if n > 1 {
			welcomeTwice++
		}
	}
	check(len(welcome) == ch.o.Accounts && welcomeTwice == 0, "one welcome email per account (%d accounts welcomed, %d more than once, of %d)", len(welcome), welcomeTwice, ch.o.Accounts)
	check(twice == 0, "no email delivered twice under its key (%d repeated)", twice)
	sentRows := c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE status = 'sent'`)
	check(unsent() == 0 && sentRows == int64(len(delivered)), "every email requested was delivered exactly once (%d delivery rows sent, %d emails at Resend, %d not sent)", sentRows, len(delivered), unsent())
	check(unnotified() == 0, "every overdue piece of equipment alerted and notified (%d left)", unnotified())

	// Cron slots: each enqueued once, by one scheduler, across every run.
	var logs strings.Builder
	for _, name := range []string{"scheduler-1", "scheduler-2"} {
		b, _ := os.ReadFile(filepath.Join(c.Logs, name+".log"))
		logs.Write(b)
	}
	enq := map[string]int{}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"outcome":"enqueued"`) {
			if m := enqueuedTaskID.FindStringSubmatch(line); m != nil {
				enq[m[1]]++
			}
		}
	}
	dup := 0
	for _, n := range enq {
		if n > 1 {
			dup++
		}
	}
	slots := c.Int(ctx, `SELECT count(*) FROM scheduler_slots WHERE enqueued_at IS NOT NULL`)
	check(dup == 0 && len(enq) > 0, "no cron slot enqueued twice (%d slots enqueued, %d twice; %d enqueued slot rows)", len(enq), dup, slots)

	// Processes: none crash-looping, all running.
	ch.procMu.Lock()
	var loops, down []string
	for _, name := range ch.names() {
		if n := len(ch.unexpected[name]); n > 3 {
			loops = append(loops, fmt.Sprintf("%s (%d exits)", name, n))
		}
		if p := ch.procs[name]; p == nil || p.Exited() {
			down = append(down, name)
		}
	}
	exits := 0
	for _, t := range ch.unexpected {
		exits += len(t)
	}
	ch.procMu.Unlock()
	check(len(loops) == 0, "no process crash-looping (%d exits nobody caused; over 3 for %v)", exits, loops)
	check(len(down) == 0, "every process running at the end (down: %v)", down)

	// The ledger.
	var longest float64
	_ = c.SQL.QueryRowContext(ctx, `SELECT COALESCE(max(extract(epoch FROM processed_at - received_at)), 0) FROM stripe_events`).Scan(&longest)
	st := ch.resend.Statuses()
	fmt.Fprintln(ch.out, "\nledger")
	fmt.Fprintf(ch.out, "  webhooks: %d events (%d posts): %d answered 200, %d answered 503, %d other failures (refused connections, timeouts)\n",
		len(sentIDs), ch.sent.Load(), ch.ok.Load(), ch.s503.Load(), ch.other.Load())
	fmt.Fprintf(ch.out, "  applied: %d events; %d accounts at their newest state\n", processed(), current())
	var kinds []string
	for k, n := range ch.faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(ch.out, "  faults: %s\n", strings.Join(kinds, ", "))
	fmt.Fprintf(ch.out, "  emails: %d delivered (%d welcome), %d requests to Resend (%d answered 429, %d answered 500)\n",
		len(delivered), len(welcome), ch.resend.RequestCount(), st[http.StatusTooManyRequests], st[http.StatusInternalServerError])
	fmt.Fprintf(ch.out, "  cron slots: %d enqueued\n", len(enq))
	fmt.Fprintf(ch.out, "  drain after the load: %s; longest wait of an event between acceptance and apply: %.1f s\n", drain.Round(time.Second), longest)
	fmt.Fprintf(ch.out, "  process exits nobody caused: %d\n", exits)
	fmt.Fprintf(ch.out, "%d passed, %d failed\n", passed, failed)
	return failed
}
