package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
)

func startT(t testing.TB, patch bool) *Server {
	t.Helper()
	s, err := start(patch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if s.Patched != patch {
		t.Fatalf("started with Patched=%v, want %v (is there a python3 with moto?)", s.Patched, patch)
	}
	return s
}

func dynamo(t testing.TB, s *Server) *dynamodb.Client {
	t.Helper()
	c, err := awsclient.New(context.Background(), awsclient.Settings{Region: "us-east-1", Endpoint: s.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return c.DynamoDB
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func key(pk string, sk ...string) map[string]types.AttributeValue {
	k := map[string]types.AttributeValue{"pk": str(pk)}
	if len(sk) > 0 {
		k["sk"] = str(sk[0])
	}
	return k
}

func item(v string, pk string, sk ...string) map[string]types.AttributeValue {
	it := key(pk, sk...)
	it["v"] = str(v)
	return it
}

func put(table string, it map[string]types.AttributeValue, cond ...string) types.TransactWriteItem {
	p := &types.Put{TableName: aws.String(table), Item: it}
	if len(cond) > 0 {
		p.ConditionExpression = aws.String(cond[0])
	}
	return types.TransactWriteItem{Put: p}
}

func set(table, v string, k map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: k, UpdateExpression: aws.String("SET v = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(v)}}}
}

func del(table string, k map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table), Key: k}}
}

func check(table, cond string, k map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(table), Key: k, ConditionExpression: aws.String(cond)}}
}

// transactions are applied in order to a table "h" (key pk) holding a1=1
// and a2=2 and a table "hr" (keys pk, sk) holding (p,0)=0 and (p,1)=1.
var transactions = []struct {
	name string
	ops  []types.TransactWriteItem
}{
	{"applied", []types.TransactWriteItem{put("h", item("3", "a3")), set("h", "10", key("a1")), del("hr", key("p", "1"))}},
	{"condition check fails after writes", []types.TransactWriteItem{
		put("h", item("4", "a4")), set("h", "20", key("a2")), del("h", key("a3")), put("hr", item("2", "p", "2")),
		check("h", "attribute_not_exists(pk)", key("a1"))}},
	{"first put's condition fails, later ops written then undone", []types.TransactWriteItem{
		put("h", item("6", "a6"), "attribute_exists(pk)"), put("h", item("7", "a7")), set("hr", "x", key("q", "1"))}},
	{"update creating an item, then a failed condition", []types.TransactWriteItem{
		set("h", "8", key("a8")), put("h", item("1", "a1"), "attribute_not_exists(pk)")}},
	{"two operations on one item", []types.TransactWriteItem{put("h", item("5", "a5")), set("h", "99", key("a1")), put("h", item("x", "a1"))}},
	{"range key put and update, then a failed check", []types.TransactWriteItem{
		put("hr", item("3", "p", "3")), set("hr", "y", key("p", "2")), set("hr", "z", key("p", "0")), check("hr", "attribute_exists(pk)", key("none", "0"))}},
	{"range key delete, then a failed condition", []types.TransactWriteItem{del("hr", key("p", "0")), put("h", item("9", "a9"), "attribute_exists(pk)")}},
	{"an item of 404,000 bytes", []types.TransactWriteItem{put("h", item(strings.Repeat("x", 404_000), "big"))}},
	{"an item over moto's limit of 405,000 bytes", []types.TransactWriteItem{put("h", item("1", "a11")), put("h", item(strings.Repeat("x", 405_000), "bigger"))}},
	{"applied after the failures", []types.TransactWriteItem{put("hr", item("9", "p", "9")), del("h", key("a2"))}},
}

// state is what a user of the tables sees: every item, sorted, and the
// outcome of each transaction (the error code and cancellation reasons).
type state struct {
	Outcomes []string
	Items    []string
}

func run(t *testing.T, c *dynamodb.Client) state {
	t.Helper()
	ctx := context.Background()
	for _, tb := range []struct {
		name string
		keys []string
	}{{"h", []string{"pk"}}, {"hr", []string{"pk", "sk"}}} {
		in := &dynamodb.CreateTableInput{TableName: aws.String(tb.name), BillingMode: types.BillingModePayPerRequest}
		for i, k := range tb.keys {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k), AttributeType: types.ScalarAttributeTypeS})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k), KeyType: []types.KeyType{types.KeyTypeHash, types.KeyTypeRange}[i]})
		}
		if _, err := c.CreateTable(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []types.TransactWriteItem{put("h", item("1", "a1")), put("h", item("2", "a2")), put("hr", item("0", "p", "0")), put("hr", item("1", "p", "1"))} {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.Put.TableName, Item: p.Put.Item}); err != nil {
			t.Fatal(err)
		}
	}
	var st state
	for _, tx := range transactions {
		_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx.ops})
		outcome := "ok"
		var canc *types.TransactionCanceledException
		var api smithy.APIError
		switch {
		case errors.As(err, &canc):
			var codes []string
			for _, r := range canc.CancellationReasons {
				codes = append(codes, aws.ToString(r.Code))
			}
			outcome = "cancelled " + strings.Join(codes, ",")
		case errors.As(err, &api):
			outcome = api.ErrorCode()
		case err != nil:
			t.Fatalf("%s: %v", tx.name, err)
		}
		st.Outcomes = append(st.Outcomes, tx.name+": "+outcome)
		var items []string
		for _, tb := range []string{"h", "hr"} {
			out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tb)})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range out.Items {
				v := fmt.Sprint(it["v"])
				if len(v) > 100 {
					v = fmt.Sprintf("%d bytes", len(v))
				}
				items = append(items, fmt.Sprintf("%s %v %v %s", tb, it["pk"], it["sk"], v))
			}
		}
		slices.Sort(items)
		st.Items = append(st.Items, fmt.Sprintf("after %q: %s", tx.name, strings.Join(items, "; ")))
	}
	return st
}

// TestPatchRollsBackLikeMoto: transactions that are cancelled (a failed
// condition anywhere in them, two operations on one item) leave the tables
// as moto without the patch leaves them, after every transaction; the
// applied ones write the same. moto's own rollback replaces each table with
// a copy taken before; the patch's undo log restores only the items.
func TestPatchRollsBackLikeMoto(t *testing.T) {
	t.Parallel()
	plain, patched := startT(t, false), startT(t, true)
	want, got := run(t, dynamo(t, plain)), run(t, dynamo(t, patched))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-moto_server +patched):\n%s", diff)
	}
	// The cases do what they say (on both servers, as they agree).
	for i, o := range want.Outcomes {
		applied := i == 0 || strings.HasPrefix(o, "an item of") || i == len(want.Outcomes)-1
		if cancelled := !strings.HasSuffix(o, ": ok"); cancelled == applied {
			t.Errorf("outcome %q", o)
		}
	}
}

// TestStopLeavesNoProcess: after Stop the server's process is gone (not
// even a zombie) and its port no longer answers.
func TestStopLeavesNoProcess(t *testing.T) {
	t.Parallel()
	s := startT(t, true)
	pid := s.Pid()
	s.Stop()
	s.Stop() // again: nothing
	if alive(pid) {
		t.Errorf("moto_server (pid %d) still runs after Stop", pid)
	}
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(s.Endpoint + "/moto-api/data.json"); err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers", s.Endpoint)
	}
}

// alive: pid names a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && syscall.Kill(pid, 0) == nil
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("Start without moto_server: %v, want ErrNotInstalled naming make deps", err)
	}
}

func TestShebangPython(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ first, want string }{
		{"#!/usr/bin/python3.11\n", "/usr/bin/python3.11"},
		{"#!/usr/bin/env python3\n", "python3"},
		{"#! /opt/venv/bin/python -E\n", "/opt/venv/bin/python"},
		{"#!/usr/bin/env bash\n", ""},
		{"#!/bin/sh\n", ""},
		{"\x7fELF\x02\x01", ""},
		{"", ""},
	} {
		p := filepath.Join(dir, "moto_server")
		if err := os.WriteFile(p, []byte(c.first+"rest\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if got := shebangPython(p); got != c.want {
			t.Errorf("%q: %q, want %q", c.first, got, c.want)
		}
	}
	if got := shebangPython(filepath.Join(dir, "none")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
