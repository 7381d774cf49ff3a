package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/form"
)

// TestStripeExport: every line of the Stripe export decodes, field by field
// through the form tags of stripe-go's own parameters (BillingMeterEventParams
// and BillingMeterEventCreateParams, which Create sends), into those
// parameters with nothing left over, and stripe-go encodes them into exactly
// the request body Stripe's POST /v1/billing/meter_events takes.
func TestStripeExport(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	u, err := sqlstore.NewUsage(db, sqlstore.UsageConfig{FlushInterval: -1, Now: func() time.Time { return hour.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	u.Record("k1", "acme", "quote", 200, 3)
	u.Record("k2", "acme", "quote", 429, 1)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := sqlstore.ReadUsage(ctx, db, sqlstore.UsageQuery{By: sqlstore.UsageByOwner, From: hour, To: hour.Add(time.Hour), Hourly: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := sqlstore.WriteUsageStripe(&out, rows, sqlstore.StripeMeter{EventName: "api_units", Customers: map[string]string{"acme": "cus_A"}}); err != nil {
		t.Fatal(err)
	}

	var bodies []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var p stripe.BillingMeterEventParams
		decodeForm(t, sc.Bytes(), &p)
		var c stripe.BillingMeterEventCreateParams
		decodeForm(t, sc.Bytes(), &c)
		body := encode(&p)
		if encode(&c) != body {
			t.Errorf("the create parameters encode differently:\n%s\n%s", encode(&c), body)
		}
		bodies = append(bodies, body)
	}
	want := []string{"event_name=api_units&identifier=gatehouse-b252c9ee5f679431d36d3105ce2b2b4a&payload[stripe_customer_id]=cus_A&payload[value]=4&timestamp=1795867200"}
	if !reflect.DeepEqual(bodies, want) {
		t.Errorf("request bodies:\n%q\nwant\n%q", bodies, want)
	}
}

// decodeForm sets each field of the JSON object line on the field of p (a
// pointer to a stripe-go parameters struct) whose form tag names it, and
// fails t on a name no field has or a value its field cannot hold.
func decodeForm(t *testing.T, line []byte, p any) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	v := reflect.ValueOf(p).Elem()
	fields := map[string]reflect.Value{}
	for i := range v.NumField() {
		fields[v.Type().Field(i).Tag.Get("form")] = v.Field(i)
	}
	for name, raw := range obj {
		f, ok := fields[name]
		if !ok {
			t.Errorf("%T has no field %q", p, name)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(f.Addr().Interface()); err != nil {
			t.Errorf("%T.%s: %v", p, name, err)
		}
	}
}

// encode is the request body stripe-go sends for p, its form values in
// order, unescaped for reading.
func encode(p any) string {
	vals := &form.Values{}
	form.AppendTo(vals, p)
	s := vals.Encode()
	return unescape(s)
}

// unescape undoes the brackets' escaping of a form body.
func unescape(s string) string {
	r, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return r
}
