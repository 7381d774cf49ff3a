package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

func TestLifecycle(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			_, _, a := setup(t, kind)

			plain, k, err := a.Create(ctx, sqlstore.Spec{Name: "ci", Owner: "acme", Products: []string{"quote"}, PerMinute: 5, PerDay: 50, ExpiresAt: t0.Add(24 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if auth.HashKey(plain) != k.Hash || (auth.Format{}).Check(plain) != nil {
				t.Fatalf("Create returned a plaintext that is not the key's")
			}
			if k.Allowance != k.ID {
				t.Errorf("Allowance = %q, want the key's own ID %q", k.Allowance, k.ID)
			}
			_, other, err := a.Create(ctx, spec("globex", 1))
			if err != nil {
				t.Fatal(err)
			}

			got, err := a.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Owner != "acme" || got.Name != "ci" || !slices.Equal(got.Products, []string{"quote"}) || got.PerMinute != 5 || got.PerDay != 50 ||
				!got.ExpiresAt.Equal(t0.Add(24*time.Hour)) || !got.CreatedAt.Equal(t0) || got.Hash != k.Hash || got.Disabled {
				t.Errorf("Get = %+v, want what Create stored", got)
			}

			acme, err := a.List(ctx, "acme")
			if err != nil || len(acme) != 1 || acme[0].ID != k.ID {
				t.Errorf("List(acme) = %v, %v; want only %s", acme, err, k.ID)
			}
			all, err := a.List(ctx, "")
			if err != nil || len(all) != 2 || all[0].ID != k.ID || all[1].ID != other.ID {
				t.Errorf("List() = %v, %v; want both, acme first", all, err)
			}

			name, perDay, never := "renamed", 70, time.Time{}
			up, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &name, Products: []string{"quote", "pdf"}, PerDay: &perDay, ExpiresAt: &never})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := a.Get(ctx, k.ID); got.Name != "renamed" || !slices.Equal(got.Products, []string{"quote", "pdf"}) || got.PerMinute != 5 || got.PerDay != 70 || !got.ExpiresAt.IsZero() {
				t.Errorf("after Update: %+v (Update returned %+v)", got, up)
			}
			if _, err := a.Update(ctx, k.ID, sqlstore.Update{Products: []string{"has space"}}); !errors.Is(err, sqlstore.ErrInvalid) {
				t.Errorf("Update with a bad slug: %v, want ErrInvalid", err)
			}

			if err := a.Disable(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := a.Get(ctx, k.ID); !got.Disabled {
				t.Error("Disable did not disable")
			}
			if _, _, err := a.Rotate(ctx, k.ID, time.Hour); !errors.Is(err, sqlstore.ErrInvalid) {
				t.Errorf("Rotate of a disabled key: %v, want ErrInvalid", err)
			}
			if err := a.Enable(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := a.Get(ctx, k.ID); got.Disabled {
				t.Error("Enable did not enable")
			}

			newPlain, rotated, err := a.Rotate(ctx, k.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if auth.HashKey(newPlain) != rotated.Hash || rotated.ID == k.ID || newPlain == plain {
				t.Error("Rotate did not mint a new key")
			}
			old, _ := a.Get(ctx, k.ID)
			if !old.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("old key expires %v, want now+overlap %v", old.ExpiresAt, t0.Add(time.Hour))
			}
			if rotated.Allowance != k.ID || old.Allowance != k.ID {
				t.Errorf("allowances %q and %q, want both the old key's ID %q", old.Allowance, rotated.Allowance, k.ID)
			}
			if stored, _ := a.Get(ctx, rotated.ID); stored.Owner != "acme" || stored.Name != "renamed" || stored.PerDay != 70 || !stored.ExpiresAt.IsZero() {
				t.Errorf("rotated key %+v, want the old key's owner, name, limits and expiry", stored)
			}

			if err := a.Delete(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			for name, err := range map[string]error{
				"get":     func() error { _, err := a.Get(ctx, k.ID); return err }(),
				"delete":  a.Delete(ctx, k.ID),
				"disable": a.Disable(ctx, k.ID),
				"enable":  a.Enable(ctx, k.ID),
				"update":  func() error { _, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &name}); return err }(),
				"rotate":  func() error { _, _, err := a.Rotate(ctx, k.ID, 0); return err }(),
			} {
				if !errors.Is(err, sqlstore.ErrNotFound) {
					t.Errorf("%s of a deleted key: %v, want ErrNotFound", name, err)
				}
			}
			if _, _, err := a.Create(ctx, sqlstore.Spec{Products: []string{"quote"}}); !errors.Is(err, sqlstore.ErrInvalid) {
				t.Errorf("Create without an owner: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	db, _ := openDB(t, "sqlite")
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM gatehouse_schema_migrations`).Scan(&n); err != nil || n != versions(t) {
		t.Errorf("%d migrations recorded (%v), want %d", n, err, versions(t))
	}
}

// TestRotateEndsLaterExpiry: rotating a key whose own expiry is later than
// now+overlap ends the old key at now+overlap, and one whose expiry is earlier
// at that expiry; the new key keeps the old key's expiry either way.
func TestRotateEndsLaterExpiry(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			_, _, a := setup(t, kind)
			for _, c := range []struct {
				name               string
				expires, oldEndsAt time.Time
			}{
				{"later", t0.Add(30 * 24 * time.Hour), t0.Add(time.Hour)},
				{"earlier", t0.Add(10 * time.Minute), t0.Add(10 * time.Minute)},
			} {
				s := spec("acme", 1)
				s.ExpiresAt = c.expires
				_, k, err := a.Create(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				_, rotated, err := a.Rotate(ctx, k.ID, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				old, err := a.Get(ctx, k.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !old.ExpiresAt.Equal(c.oldEndsAt) {
					t.Errorf("%s expiry: old key expires %v, want %v", c.name, old.ExpiresAt.UTC(), c.oldEndsAt)
				}
				if !rotated.ExpiresAt.Equal(c.expires) {
					t.Errorf("%s expiry: new key expires %v, want the old key's %v", c.name, rotated.ExpiresAt.UTC(), c.expires)
				}
				if err := old.Err(c.oldEndsAt); err != auth.ErrKeyExpired {
					t.Errorf("%s expiry: old key at %v: %v, want ErrKeyExpired", c.name, c.oldEndsAt, err)
				}
			}
		})
	}
}

// TestControlCharactersRefused: a name, owner or product slug with a control
// character (ESC, BEL, a newline; C1's CSI) or that is not UTF-8 is refused by
// Create, Update and SetOwnerLimits with an error saying which field and
// where, and nothing is stored: such text would reach the terminal of whoever
// lists the keys.
func TestControlCharactersRefused(t *testing.T) {
	ctx := context.Background()
	_, _, a := setup(t, "sqlite")
	_, k, err := a.Create(ctx, spec("acme", 1))
	if err != nil {
		t.Fatal(err)
	}
	withName := func(name string) sqlstore.Spec { s := spec("acme", 2); s.Name = name; return s }
	withOwner := func(owner string) sqlstore.Spec { s := spec("acme", 2); s.Owner = owner; return s }
	withProduct := func(p string) sqlstore.Spec { s := spec("acme", 2); s.Products = []string{p}; return s }
	for _, c := range []struct {
		spec sqlstore.Spec
		want string
	}{
		{withName("ci\x1b[2J"), `sqlstore: invalid key: name "ci\x1b[2J": control character U+001B`},
		{withName("ci\a"), `sqlstore: invalid key: name "ci\a": control character U+0007`},
		{withName("ci\nid: key_0"), `sqlstore: invalid key: name "ci\nid: key_0": control character U+000A`},
		{withName("ci\u009b31m"), `sqlstore: invalid key: name "ci\u009b31m": control character U+009B`},
		{withName("ci\xff"), `sqlstore: invalid key: name "ci\xff": not UTF-8`},
		{withOwner("acme\x1b]0;x\a"), `sqlstore: invalid key: owner "acme\x1b]0;x\a": control character U+001B`},
		{withProduct("quote\x1b"), `sqlstore: invalid key: product slug "quote\x1b"`},
	} {
		if _, _, err := a.Create(ctx, c.spec); !errors.Is(err, sqlstore.ErrInvalid) || err.Error() != c.want {
			t.Errorf("Create of %q, %q, %q = %q, want %s", c.spec.Name, c.spec.Owner, c.spec.Products, err, c.want)
		}
	}
	bad := "ci\x1b[2J"
	if _, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &bad}); !errors.Is(err, sqlstore.ErrInvalid) ||
		err.Error() != `sqlstore: update `+k.ID+`: sqlstore: invalid key: name "ci\x1b[2J": control character U+001B` {
		t.Errorf("Update with a bad name: %q", err)
	}
	if err := a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme\a", PerDay: 10}); !errors.Is(err, sqlstore.ErrInvalid) ||
		err.Error() != `sqlstore: invalid key: owner "acme\a": control character U+0007` {
		t.Errorf("SetOwnerLimits with a bad owner: %q", err)
	}
	keys, err := a.List(ctx, "")
	if err != nil || len(keys) != 1 || keys[0].Name != k.Name {
		t.Errorf("List: %d keys (%v), want only the first key, unchanged", len(keys), err)
	}
	if owners, err := a.ListOwnerLimits(ctx); err != nil || len(owners) != 0 {
		t.Errorf("ListOwnerLimits: %d (%v), want none", len(owners), err)
	}
	// Printable text beyond ASCII, tabs aside, is a name like any other.
	if _, _, err := a.Create(ctx, withName("Zürich – 東京 ✓")); err != nil {
		t.Errorf("Create with a name beyond ASCII: %v", err)
	}
}
