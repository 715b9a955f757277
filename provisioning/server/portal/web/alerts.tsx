// The on-site 911 alert (Kari's Law): every open portal shows a 911 call the
// moment the server hears of it, with a siren until someone here acknowledges
// it. A 933 test call shows too, quietly.
import { useEffect, useState } from 'preact/hooks';
import type { Alarm, AlarmState } from './alarm.js';
import type { EmergencyFacts, StoredEvent } from './types.js';
import { useApp, when } from './ui.js';

interface Alert {
  event: StoredEvent;
  facts: EmergencyFacts;
  shownAt: number;
}

export function EmergencyAlerts({ alarm }: { alarm: Alarm }) {
  const { live } = useApp();
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [sound, setSound] = useState<AlarmState>(alarm.state);

  useEffect(() => {
    alarm.onChange = setSound;
    return live.on('emergency', ({ event, facts }) => {
      setAlerts((list) => (list.some((a) => a.event.id === event.id) ? list : [{ event, facts, shownAt: Date.now() }, ...list]));
    });
  }, [live, alarm]);

  const open911 = alerts.some((a) => !a.facts.test);
  useEffect(() => {
    if (open911) {
      void alarm.start();
      const title = document.title;
      document.title = '🚨 911 CALL · E911 admin';
      return () => {
        document.title = title;
      };
    }
    alarm.stop();
    return undefined;
  }, [open911, alarm]);

  if (alerts.length === 0) return null;
  const ack = (id: string) => setAlerts((list) => list.filter((a) => a.event.id !== id));
  return (
    <div class="alerts" aria-live="assertive">
      {open911 && sound === 'blocked' ? (
        <p class="sound-blocked">
          The browser blocked the alarm sound.{' '}
          <button type="button" onClick={() => void alarm.start()}>
            Turn on sound
          </button>
        </p>
      ) : null}
      {alerts.map(({ event, facts }) => (
        <div
          key={event.id}
          class={facts.test ? 'alert test' : 'alert emergency'}
          role="alert"
          data-event-id={event.id}
          data-sound={facts.test ? undefined : sound}
        >
          <h2>
            {facts.test ? `Test call (${facts.dialed ?? '933'}), not an emergency` : `EMERGENCY: ${facts.dialed ?? '911'} was called`}
          </h2>
          <dl>
            <dt>Caller</dt>
            <dd>
              {facts.callerName ?? facts.user ?? 'unknown'}
              {facts.callback ? `, callback ${facts.callback}` : ''}
            </dd>
            <dt>Location</dt>
            <dd>
              {facts.locationCode ? <strong>{facts.locationCode}</strong> : null} {facts.addressLines.join(', ') || 'no address reported'}
              {facts.addressMissing ? ' (the phone had no address)' : ''}
            </dd>
            <dt>When</dt>
            <dd>{facts.timeLocal || when(event.ts)}</dd>
            <dt>Phone</dt>
            <dd>
              {facts.deviceId}
              {facts.deviceIp ? `, ${facts.deviceIp}` : ''}
            </dd>
          </dl>
          <p class="actions">
            <a href={`#/calls/${encodeURIComponent(event.id)}`}>Notification status</a>
            <button type="button" onClick={() => ack(event.id)}>
              Acknowledge
            </button>
          </p>
        </div>
      ))}
    </div>
  );
}
