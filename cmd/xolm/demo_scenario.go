package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/xprocess"
)

// The demo's people, devices and room.
const (
	demoAlice       = "@alice:example.org"
	demoAliceDevice = "ALICE"
	demoBob         = "@bob:example.org"
	demoBobDevice   = "BOB"
	demoRoom        = "!demo:example.org"
)

// The scenario repeats a round of demoRound room messages from Bob. For
// each message Alice's phone gets a push; who handles it depends on the
// app's phase:
//   - messages 0–3, app Active: the app syncs and decrypts; after the last of
//     them Alice answers (a new room key of hers goes to Bob over Olm, which
//     turns the Olm ratchet over, then a room message);
//   - messages 4–5, app Background: the notification extension is woken and
//     decrypts, and the app, still running, syncs the same to-device batch;
//   - messages 6–9, app Suspended: the notification extension decrypts.
//
// Bob rotates his room key every demoBobRotation messages, so that room keys
// (Olm to-device messages) reach both processes; Alice rotates hers on every
// message, so that each of her answers is an Olm message that turns the
// ratchet over. Everything happens in this order whatever the timing, so
// the outcome of a run is the same every time.
const (
	demoRound       = 10
	demoActiveEnd   = 4 // messages [0, 4) of a round: Active
	demoBackground  = 6 // [4, 6): Background; [6, demoRound): Suspended
	demoBobRotation = 5
	demoMaxFlushes  = 8 // rounds of requests one flush sends before it gives up
	demoMaxFailures = 4 // failures kept to print
)

// phaseOf returns the app's phase for message k.
func phaseOf(k int) xprocess.Phase {
	switch i := k % demoRound; {
	case i < demoActiveEnd:
		return xprocess.Active
	case i < demoBackground:
		return xprocess.Background
	}
	return xprocess.Suspended
}

// demoTally counts what happened. Index 0 of the per-process pairs is the
// app, 1 the notification extension.
type demoTally struct {
	messages int
	// Bob → Alice: Olm to-device events and Megolm room events.
	olmSent, megolmSent            int
	olmDecrypted, megolmDecrypted  [2]int
	duplicates                     int
	olmUndecryptable, megolmFailed int
	wedged, unwedging              int
	answersSent, answersDecrypted  int // Alice → Bob, Olm and Megolm
	answersFailed                  int
	reusedKeyIDs                   int
	phaseChanges                   int
	generationFrom, generationTo   int64
	failures                       []string // the first demoMaxFailures, described
	failuresLeft                   int      // the others, counted
}

// failed reports whether anything went wrong.
func (t *demoTally) failed() bool {
	return t.olmUndecryptable+t.megolmFailed+t.wedged+t.answersFailed+t.reusedKeyIDs > 0
}

// demoScenario is one run of the scenario.
type demoScenario struct {
	hs       *demoHomeserver
	bob      demoDevice
	procs    [2]demoDevice // app, nse
	appPhase xprocess.Phase
	tally    *demoTally
}

var roleNames = [2]string{"app", "nse"}

// setup uploads both devices' keys and lets each find the other's.
func (s *demoScenario) setup(ctx context.Context) error {
	app := s.procs[0]
	steps := []func() error{
		func() error { return s.flushAlice(ctx, app) },
		func() error { return s.flush(ctx, s.bob, demoBob, demoBobDevice) },
		func() error { return s.track(ctx, app, demoBob, demoAlice, demoAliceDevice) },
		func() error { return s.track(ctx, s.bob, demoAlice, demoBob, demoBobDevice) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (s *demoScenario) track(ctx context.Context, d demoDevice, other, user, device string) error {
	if _, err := d.do(ctx, demoCommand{Op: opTrack, Users: []string{other}}); err != nil {
		return err
	}
	return s.flush(ctx, d, user, device)
}

// flush sends a device's outgoing requests until none are left.
func (s *demoScenario) flush(ctx context.Context, d demoDevice, user, device string) error {
	for range demoMaxFlushes {
		r, err := d.do(ctx, demoCommand{Op: opRequests})
		if err != nil || len(r.Requests) == 0 {
			return err
		}
		for _, q := range r.Requests {
			resp, err := s.hs.answer(user, device, q)
			if err != nil {
				return err
			}
			if _, err := d.do(ctx, demoCommand{Op: opSent, Request: &q, Response: resp}); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("%s keeps sending requests", deviceName(user, device))
}

func (s *demoScenario) flushAlice(ctx context.Context, d demoDevice) error {
	return s.flush(ctx, d, demoAlice, demoAliceDevice)
}

// message runs message k of the scenario.
func (s *demoScenario) message(ctx context.Context, k int) error {
	if ph := phaseOf(k); ph != s.appPhase {
		if _, err := s.procs[0].do(ctx, demoCommand{Op: opPhase, Phase: ph.String()}); err != nil {
			return err
		}
		s.appPhase = ph
		s.tally.phaseChanges++
	}
	if err := s.bobSyncs(ctx, k); err != nil {
		return err
	}
	event, err := s.send(ctx, s.bob, demoBob, demoBobDevice, demoAlice, demoBobRotation, k)
	if err != nil {
		return err
	}
	s.tally.megolmSent++
	batch := s.hs.sync(demoAlice, demoAliceDevice)
	switch s.appPhase {
	case xprocess.Active:
		err = s.push(ctx, 0, batch, event, k)
	case xprocess.Background:
		if err = s.push(ctx, 1, batch, event, k); err == nil {
			err = s.push(ctx, 0, batch, event, k) // the same batch: the app synced at the same time
		}
	default:
		err = s.push(ctx, 1, batch, event, k)
	}
	if err != nil || k%demoRound != demoActiveEnd-1 {
		return err
	}
	return s.aliceAnswers(ctx, k)
}

// send shares the sender's room key with to's devices (claiming a one-time
// key first where there is no Olm session), sends the to-device requests and
// returns room message k, encrypted.
func (s *demoScenario) send(ctx context.Context, d demoDevice, user, device, to string, rotation, k int) (json.RawMessage, error) {
	for range 2 {
		r, err := d.do(ctx, demoCommand{Op: opShare, Room: demoRoom, Users: []string{user, to}, Rotation: rotation})
		if err != nil {
			return nil, err
		}
		if r.NoSession {
			if _, err := d.do(ctx, demoCommand{Op: opClaim, Users: []string{to}}); err != nil {
				return nil, err
			}
		}
		if err := s.flush(ctx, d, user, device); err != nil {
			return nil, err
		}
		if !r.NoSession {
			break
		}
	}
	content, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d", k)})
	r, err := d.do(ctx, demoCommand{Op: opEncrypt, Room: demoRoom, EventType: "m.room.message", Content: content})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"type": "m.room.encrypted", "room_id": demoRoom, "sender": user,
		"event_id": fmt.Sprintf("$%s-%d", device, k), "origin_server_ts": 1_700_000_000_000 + int64(k)*1000,
		"content": r.Content})
}

// push has process p sync the to-device batch, send what that queued, and
// decrypt room message k, as a notification extension woken for it does.
func (s *demoScenario) push(ctx context.Context, p int, batch demoCommand, event json.RawMessage, k int) error {
	d := s.procs[p]
	r, err := d.do(ctx, batch)
	if err != nil {
		return err
	}
	for _, o := range r.Outcomes {
		switch o.Class {
		case classDecrypted:
			s.tally.olmDecrypted[p]++
		case classDuplicate:
			s.tally.duplicates++
		case classWedged:
			s.tally.wedged++
			s.tally.olmUndecryptable++
			if o.Unwedging == "claim queued" {
				s.tally.unwedging++
			}
			s.failure("%s, message %d: to-device %s", roleNames[p], k+1, o.Reason)
		default:
			s.tally.olmUndecryptable++
			s.failure("%s, message %d: to-device %s", roleNames[p], k+1, o.Reason)
		}
	}
	if err := s.flushAlice(ctx, d); err != nil {
		return err
	}
	r, err = d.do(ctx, demoCommand{Op: opDecryptRoom, Room: demoRoom, Events: []json.RawMessage{event}})
	if err != nil {
		return err
	}
	for _, o := range r.Outcomes {
		if o.Class == classDecrypted {
			s.tally.megolmDecrypted[p]++
		} else {
			s.tally.megolmFailed++
			s.failure("%s, message %d: room event %s", roleNames[p], k+1, o.Reason)
		}
	}
	return nil
}

// aliceAnswers has the app send a room message of Alice's (after her room
// key, over Olm) and Bob decrypt both.
func (s *demoScenario) aliceAnswers(ctx context.Context, k int) error {
	event, err := s.send(ctx, s.procs[0], demoAlice, demoAliceDevice, demoBob, 1, k)
	if err != nil {
		return err
	}
	s.tally.answersSent++
	if err := s.bobSyncs(ctx, k); err != nil {
		return err
	}
	r, err := s.bob.do(ctx, demoCommand{Op: opDecryptRoom, Room: demoRoom, Events: []json.RawMessage{event}})
	if err != nil {
		return err
	}
	return s.countAnswers(r.Outcomes, "room event", k)
}

// bobSyncs delivers Bob's to-device events and sends his requests.
func (s *demoScenario) bobSyncs(ctx context.Context, k int) error {
	batch := s.hs.sync(demoBob, demoBobDevice)
	if len(batch.ToDevice) == 0 {
		return nil
	}
	r, err := s.bob.do(ctx, batch)
	if err != nil {
		return err
	}
	if err := s.countAnswers(r.Outcomes, "to-device", k); err != nil {
		return err
	}
	return s.flush(ctx, s.bob, demoBob, demoBobDevice)
}

func (s *demoScenario) countAnswers(outcomes []demoOutcome, what string, k int) error {
	if len(outcomes) == 0 {
		return errors.New("bob: no outcome for a message")
	}
	for _, o := range outcomes {
		switch o.Class {
		case classDecrypted:
			s.tally.answersDecrypted++
		case classDuplicate:
		default:
			s.tally.answersFailed++
			s.failure("bob, message %d: %s %s", k+1, what, o.Reason)
		}
	}
	return nil
}

// failure records a failure's description, or counts it once enough are
// kept.
func (s *demoScenario) failure(format string, args ...any) {
	if len(s.tally.failures) < demoMaxFailures {
		s.tally.failures = append(s.tally.failures, fmt.Sprintf(format, args...))
		return
	}
	s.tally.failuresLeft++
}
