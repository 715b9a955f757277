// Notifications: how Kari's Law notices leave the server (SMTP, an HTTP SMS
// provider, the app webhook, security-desk calls over SIP), a test send through
// each, and the channel policy. Passwords and the webhook secret are write-only:
// the page says whether one is set, and a blank field keeps it.
// Over 400 lines: four channels' settings, each with its test send, and the policy,
// on one page as admins expect them.
import { useEffect, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import { ApiError, issuesByField } from '../api.js';
import type { AccountView } from '../types.js';
import './notifications.css';
import { Checkbox, ErrorBox, Field, Page, Saved, Select, useApp, useLoad } from '../ui.js';

type Security = 'tls' | 'starttls' | 'none';
/** The server never shows a header's value (an API key, say): only whether one is set. */
interface Header {
  name: string;
  valueSet: boolean;
}
interface SmtpView {
  host: string;
  port: number;
  security: Security;
  username?: string;
  from: string;
  allowInvalidCertificates: boolean;
  passwordSet: boolean;
}
interface SmsView {
  url: string;
  username?: string;
  from: string;
  header?: Header;
  passwordSet: boolean;
}
interface WebhookView {
  url: string;
  header?: Header;
  secretSet: boolean;
}
interface CallView {
  gateway?: string;
  from: string;
  repeats: number;
  ringSeconds: number;
  maxAttempts: number;
  username?: string;
  registrar?: string;
  realm?: string;
  passwordSet: boolean;
}
export interface SettingsView {
  smtp: SmtpView | null;
  sms: SmsView | null;
  webhook: WebhookView | null;
  call: CallView | null;
  policy: string;
  /** For 933 test calls; null: the same as policy. */
  testPolicy: string | null;
}

type Channel = 'email' | 'sms' | 'webhook' | 'call';
interface TestResult {
  ok: boolean;
  providerId?: string;
  error?: string;
}

// The form keeps strings; what is sent is built from them on save.
interface Form {
  smtp: {
    on: boolean;
    host: string;
    port: string;
    security: Security;
    username: string;
    password: string;
    from: string;
    allowInvalid: boolean;
  };
  sms: { on: boolean; url: string; username: string; password: string; from: string; headerName: string; headerValue: string };
  webhook: { on: boolean; url: string; secret: string; headerName: string; headerValue: string };
  call: {
    on: boolean;
    gateway: string;
    from: string;
    repeats: string;
    ringSeconds: string;
    maxAttempts: string;
    username: string;
    password: string;
    registrar: string;
    realm: string;
  };
}

function formOf(s: SettingsView): Form {
  return {
    smtp: {
      on: s.smtp !== null,
      host: s.smtp?.host ?? '',
      port: String(s.smtp?.port ?? 587),
      security: s.smtp?.security ?? 'starttls',
      username: s.smtp?.username ?? '',
      password: '',
      from: s.smtp?.from ?? '',
      allowInvalid: s.smtp?.allowInvalidCertificates ?? false,
    },
    sms: {
      on: s.sms !== null,
      url: s.sms?.url ?? '',
      username: s.sms?.username ?? '',
      password: '',
      from: s.sms?.from ?? '',
      headerName: s.sms?.header?.name ?? '',
      headerValue: '',
    },
    webhook: { on: s.webhook !== null, url: s.webhook?.url ?? '', secret: '', headerName: s.webhook?.header?.name ?? '', headerValue: '' },
    call: {
      on: s.call !== null,
      gateway: s.call?.gateway ?? '',
      from: s.call?.from ?? '',
      repeats: String(s.call?.repeats ?? 4),
      ringSeconds: String(s.call?.ringSeconds ?? 30),
      maxAttempts: String(s.call?.maxAttempts ?? 5),
      username: s.call?.username ?? '',
      password: '',
      registrar: s.call?.registrar ?? '',
      realm: s.call?.realm ?? '',
    },
  };
}

const opt = (v: string) => (v.trim() === '' ? undefined : v.trim());
/** A whole number as a number; anything else as typed, so the server names the problem beside the field. */
const int = (v: string) => (v.trim() !== '' && Number.isInteger(Number(v)) ? Number(v) : v);
// A blank value is left out: the server keeps the stored one (while the URL stays the same).
const header = (name: string, value: string) => (name.trim() ? { header: { name: name.trim(), ...(value ? { value } : {}) } } : {});

/** The PUT body: every channel is given (replaced) or null (removed); a blank password is left out (kept). */
function bodyOf(f: Form): Record<string, unknown> {
  return {
    smtp: f.smtp.on
      ? {
          host: f.smtp.host.trim(),
          port: int(f.smtp.port),
          security: f.smtp.security,
          ...(opt(f.smtp.username) ? { username: f.smtp.username.trim() } : {}),
          ...(f.smtp.password ? { password: f.smtp.password } : {}),
          from: f.smtp.from.trim(),
          allowInvalidCertificates: f.smtp.allowInvalid,
        }
      : null,
    sms: f.sms.on
      ? {
          url: f.sms.url.trim(),
          ...(opt(f.sms.username) ? { username: f.sms.username.trim() } : {}),
          ...(f.sms.password ? { password: f.sms.password } : {}),
          from: f.sms.from.trim(),
          ...header(f.sms.headerName, f.sms.headerValue),
        }
      : null,
    webhook: f.webhook.on
      ? {
          url: f.webhook.url.trim(),
          ...(f.webhook.secret ? { secret: f.webhook.secret } : {}),
          ...header(f.webhook.headerName, f.webhook.headerValue),
        }
      : null,
    call: f.call.on
      ? {
          ...(opt(f.call.gateway) ? { gateway: f.call.gateway.trim() } : {}),
          from: f.call.from.trim(),
          repeats: int(f.call.repeats),
          ringSeconds: int(f.call.ringSeconds),
          maxAttempts: int(f.call.maxAttempts),
          ...(opt(f.call.username) ? { username: f.call.username.trim() } : {}),
          ...(f.call.password ? { password: f.call.password } : {}),
          ...(opt(f.call.registrar) ? { registrar: f.call.registrar.trim() } : {}),
          ...(opt(f.call.realm) ? { realm: f.call.realm.trim() } : {}),
        }
      : null,
  };
}

export const POLICIES: { value: string; label: string; explain: string }[] = [
  {
    value: 'all',
    label: 'All channels',
    explain:
      "Every notice goes out on every configured channel at once: email to the caller's notification emails and the location's admins, SMS to the location's numbers and to the mobiles of the people there, and the app webhook if one is set.",
  },
  {
    value: 'app-only',
    label: 'App only',
    explain:
      'Only the app webhook is called. No email and no SMS are sent, so the webhook must be set (E911 cannot be enabled without it).',
  },
  {
    value: 'app-then-email-sms',
    label: 'App, then email and SMS',
    explain: 'The app webhook is called first. If it fails, or none is set, email and SMS go out at once as under "All channels".',
  },
];

export function NotificationsPage(_: RouteProps) {
  const { api, live } = useApp();
  const settings = useLoad(() => api.get<SettingsView>('/api/account/notifications'));
  const [form, setForm] = useState<Form | null>(null);
  const [dirty, setDirty] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (settings.data && !dirty) setForm(formOf(settings.data));
  }, [settings.data]);
  // Another administrator saved: reload unless this form has unsaved changes.
  useEffect(() => live.on('change', (c) => c.entity === 'notifications' && !dirty && settings.reload()), [live, dirty]);

  const errors = saveError instanceof ApiError ? issuesByField(saveError.issues) : {};
  const set = <K extends keyof Form>(ch: K, patch: Partial<Form[K]>) => {
    setForm((f) => f && { ...f, [ch]: { ...f[ch], ...patch } });
    setDirty(true);
    setSaved(null);
  };

  const save = async (e: Event) => {
    e.preventDefault();
    if (!form) return;
    setBusy(true);
    setSaveError(null);
    try {
      const view = await api.put<SettingsView>('/api/account/notifications', bodyOf(form));
      setDirty(false);
      setForm(formOf(view));
      settings.reload();
      setSaved('Notification settings saved.');
    } catch (err) {
      setSaveError(err);
    } finally {
      setBusy(false);
    }
  };

  const s = settings.data;
  return (
    <Page title="Notifications">
      <ErrorBox error={settings.error} title="Could not load" />
      <p class="hint">
        When a phone calls 911 (or the 933 test number), the server sends a notice with the caller, callback number and dispatchable address
        through these channels, as Kari's Law asks. Each recipient's delivery is shown on the <a href="#/calls">Emergency calls</a> page.
      </p>
      {form && s ? (
        <>
          <form onSubmit={save} noValidate aria-labelledby="channels-title">
            <h2 id="channels-title">Channels</h2>
            <div class="channels">
              <ChannelBox legend="Email (SMTP)" on={form.smtp.on} onToggle={(on) => set('smtp', { on })} name="SMTP">
                <div class="grid">
                  <Field
                    label="SMTP host"
                    required
                    value={form.smtp.host}
                    onInput={(v) => set('smtp', { host: v })}
                    error={errors['smtp.host']}
                  />
                  <Field
                    label="SMTP port"
                    type="number"
                    required
                    value={form.smtp.port}
                    onInput={(v) => set('smtp', { port: v })}
                    error={errors['smtp.port']}
                  />
                  <Select
                    label="Security"
                    value={form.smtp.security}
                    onChange={(v) => set('smtp', { security: v as Security })}
                    options={[
                      { value: 'starttls', label: 'STARTTLS (usually port 587)' },
                      { value: 'tls', label: 'TLS from the start (usually 465)' },
                      { value: 'none', label: 'None (plain text, a local relay)' },
                    ]}
                    error={errors['smtp.security']}
                  />
                  <Field
                    label="SMTP user name"
                    value={form.smtp.username}
                    onInput={(v) => set('smtp', { username: v })}
                    error={errors['smtp.username']}
                    autoComplete="off"
                    hint="Blank: no login."
                  />
                  <Field
                    label="SMTP password"
                    type="password"
                    value={form.smtp.password}
                    onInput={(v) => set('smtp', { password: v })}
                    error={errors['smtp.password']}
                    autoComplete="new-password"
                    hint={`${s.smtp?.passwordSet ? 'Set' : 'Not set'}. Blank keeps it.`}
                  />
                  <Field
                    label="From address"
                    type="email"
                    required
                    value={form.smtp.from}
                    onInput={(v) => set('smtp', { from: v })}
                    error={errors['smtp.from']}
                  />
                </div>
                <Checkbox
                  label="Allow invalid certificates"
                  checked={form.smtp.allowInvalid}
                  onChange={(v) => set('smtp', { allowInvalid: v })}
                  hint="Only for a relay on your own network with a self-signed certificate."
                />
              </ChannelBox>

              <ChannelBox legend="SMS provider" on={form.sms.on} onToggle={(on) => set('sms', { on })} name="SMS">
                <p class="hint">
                  The server POSTs JSON {'{from, to, text}'} to this URL, with basic authentication when a user name is given.
                </p>
                <div class="grid">
                  <Field
                    label="SMS provider URL"
                    type="url"
                    required
                    value={form.sms.url}
                    onInput={(v) => set('sms', { url: v })}
                    error={errors['sms.url']}
                    placeholder="https://"
                  />
                  <Field
                    label="SMS user name"
                    value={form.sms.username}
                    onInput={(v) => set('sms', { username: v })}
                    error={errors['sms.username']}
                    autoComplete="off"
                  />
                  <Field
                    label="SMS password"
                    type="password"
                    value={form.sms.password}
                    onInput={(v) => set('sms', { password: v })}
                    error={errors['sms.password']}
                    autoComplete="new-password"
                    hint={`${s.sms?.passwordSet ? 'Set' : 'Not set'}. Blank keeps it.`}
                  />
                  <Field
                    label="SMS from number"
                    required
                    value={form.sms.from}
                    onInput={(v) => set('sms', { from: v })}
                    error={errors['sms.from']}
                    hint="E.164, e.g. +14085550000"
                  />
                  <Field
                    label="SMS header name"
                    value={form.sms.headerName}
                    onInput={(v) => set('sms', { headerName: v })}
                    error={errors['sms.header.name']}
                    hint="Optional, e.g. X-API-Key"
                  />
                  <Field
                    label="SMS header value"
                    value={form.sms.headerValue}
                    onInput={(v) => set('sms', { headerValue: v })}
                    error={errors['sms.header.value']}
                    hint={s.sms?.header?.valueSet ? 'Set. Blank keeps it (a new URL needs it again).' : undefined}
                  />
                </div>
              </ChannelBox>

              <ChannelBox legend="App webhook" on={form.webhook.on} onToggle={(on) => set('webhook', { on })} name="webhook">
                <p class="hint">The server POSTs each notice as JSON; with a secret, it signs the body (X-E911-Signature: sha256=HMAC).</p>
                <div class="grid">
                  <Field
                    label="Webhook URL"
                    type="url"
                    required
                    value={form.webhook.url}
                    onInput={(v) => set('webhook', { url: v })}
                    error={errors['webhook.url']}
                    placeholder="https://"
                  />
                  <Field
                    label="Webhook secret"
                    type="password"
                    value={form.webhook.secret}
                    onInput={(v) => set('webhook', { secret: v })}
                    error={errors['webhook.secret']}
                    autoComplete="new-password"
                    hint={`${s.webhook?.secretSet ? 'Set' : 'Not set'}. Blank keeps it.`}
                  />
                  <Field
                    label="Webhook header name"
                    value={form.webhook.headerName}
                    onInput={(v) => set('webhook', { headerName: v })}
                    error={errors['webhook.header.name']}
                    hint="Optional"
                  />
                  <Field
                    label="Webhook header value"
                    value={form.webhook.headerValue}
                    onInput={(v) => set('webhook', { headerValue: v })}
                    error={errors['webhook.header.value']}
                    hint={s.webhook?.header?.valueSet ? 'Set. Blank keeps it (a new URL needs it again).' : undefined}
                  />
                </div>
              </ChannelBox>

              <ChannelBox legend="Desk calls (SIP)" on={form.call.on} onToggle={(on) => set('call', { on })} name="calls">
                <p class="hint">
                  The server calls each location's desk numbers, plays the spoken notice until someone presses 1, and records the answer. A
                  PBX that asks for a login gets the user name and password below; with a registrar, the server registers there first.
                </p>
                <div class="grid">
                  <Field
                    label="SIP gateway"
                    value={form.call.gateway}
                    onInput={(v) => set('call', { gateway: v })}
                    error={errors['call.gateway']}
                    placeholder="sip:pbx.example"
                    hint="Where phone numbers are called: sip:NUMBER@gateway. Not needed when every desk number is a SIP URI."
                  />
                  <Field
                    label="Call from"
                    required
                    value={form.call.from}
                    onInput={(v) => set('call', { from: v })}
                    error={errors['call.from']}
                    placeholder="sip:e911@pbx.example"
                    hint="The SIP address the desk's display shows (and the account that logs in)."
                  />
                  <Field
                    label="Message repeats"
                    type="number"
                    required
                    value={form.call.repeats}
                    onInput={(v) => set('call', { repeats: v })}
                    error={errors['call.repeats']}
                    hint="Times the message plays before the call counts as not acknowledged (1-20)."
                  />
                  <Field
                    label="Ring seconds"
                    type="number"
                    required
                    value={form.call.ringSeconds}
                    onInput={(v) => set('call', { ringSeconds: v })}
                    error={errors['call.ringSeconds']}
                    hint="How long a call rings before it counts as not answered (5-120)."
                  />
                  <Field
                    label="Call attempts"
                    type="number"
                    required
                    value={form.call.maxAttempts}
                    onInput={(v) => set('call', { maxAttempts: v })}
                    error={errors['call.maxAttempts']}
                    hint="Calls per number at most when not answered or busy (1-10)."
                  />
                  <Field
                    label="SIP user name"
                    value={form.call.username}
                    onInput={(v) => set('call', { username: v })}
                    error={errors['call.username']}
                    autoComplete="off"
                    hint="Blank: no login."
                  />
                  <Field
                    label="SIP password"
                    type="password"
                    value={form.call.password}
                    onInput={(v) => set('call', { password: v })}
                    error={errors['call.password']}
                    autoComplete="new-password"
                    hint={`${s.call?.passwordSet ? 'Set' : 'Not set'}. Blank keeps it (a new gateway, registrar or user name needs it again).`}
                  />
                  <Field
                    label="SIP registrar"
                    value={form.call.registrar}
                    onInput={(v) => set('call', { registrar: v })}
                    error={errors['call.registrar']}
                    placeholder="sip:pbx.example"
                    hint="Blank: the server does not register."
                  />
                  <Field
                    label="SIP realm"
                    value={form.call.realm}
                    onInput={(v) => set('call', { realm: v })}
                    error={errors['call.realm']}
                    hint="Blank: any realm the PBX names."
                  />
                </div>
              </ChannelBox>
            </div>
            <ErrorBox error={saveError} />
            <Saved message={saved} />
            <p class="actions">
              <button type="submit" disabled={busy}>
                Save channels
              </button>
              {dirty ? <span class="warn">Unsaved changes</span> : null}
            </p>
          </form>

          <TestSends settings={s} dirty={dirty} />
          <PolicyForm settings={s} />
        </>
      ) : null}
    </Page>
  );
}

/** One channel's fieldset, or a button to set it up; "Remove" takes it out on the next save. */
function ChannelBox(p: { legend: string; name: string; on: boolean; onToggle: (on: boolean) => void; children: preact.ComponentChildren }) {
  return (
    <fieldset class="channel">
      <legend>{p.legend}</legend>
      {p.on ? (
        <>
          {p.children}
          <p class="actions">
            <button type="button" class="secondary" onClick={() => p.onToggle(false)}>
              Remove {p.name}
            </button>
          </p>
        </>
      ) : (
        <p class="actions">
          <span class="muted">Not configured.</span>
          <button type="button" class="secondary" onClick={() => p.onToggle(true)}>
            Set up {p.name}
          </button>
        </p>
      )}
    </fieldset>
  );
}

/** A sample notice through one channel now, with the saved settings, and what came of it. */
function TestSends({ settings, dirty }: { settings: SettingsView; dirty: boolean }) {
  return (
    <section aria-labelledby="test-title">
      <h2 id="test-title">Test send</h2>
      <p class="hint">A sample "test call" notice goes out at once through the saved settings, so you see whether they work.</p>
      {dirty ? <p class="notice warning">The channels have unsaved changes: a test uses the saved settings. Save first.</p> : null}
      <div class="cards">
        <TestSend channel="email" title="Email" configured={settings.smtp !== null} toLabel="Test email to" toType="email" />
        <TestSend
          channel="sms"
          title="SMS"
          configured={settings.sms !== null}
          toLabel="Test SMS to"
          toType="tel"
          toHint="E.164, e.g. +14085550199"
        />
        <TestSend channel="webhook" title="Webhook" configured={settings.webhook !== null} />
        <TestSend
          channel="call"
          title="Desk call"
          configured={settings.call !== null}
          toLabel="Test call to"
          toHint="E.164 through the gateway, or a SIP URI. It rings until someone presses 1."
        />
      </div>
    </section>
  );
}

function TestSend(p: { channel: Channel; title: string; configured: boolean; toLabel?: string; toType?: string; toHint?: string }) {
  const { api } = useApp();
  const [to, setTo] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<TestResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult(null);
    setError(null);
    try {
      setResult(
        await api.post<TestResult>('/api/account/notifications/test', { channel: p.channel, ...(p.toLabel ? { to: to.trim() } : {}) }),
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card test-send" onSubmit={send} aria-label={`Test ${p.title}`} noValidate>
      <h3>{p.title}</h3>
      {!p.configured ? <p class="muted">Not configured.</p> : null}
      {p.toLabel ? (
        <Field label={p.toLabel} type={p.toType ?? 'text'} value={to} onInput={setTo} {...(p.toHint ? { hint: p.toHint } : {})} />
      ) : null}
      <button type="submit" disabled={busy || !p.configured}>
        {busy ? 'Sending…' : `Send test ${{ email: 'email', sms: 'SMS', webhook: 'webhook', call: 'call' }[p.channel]}`}
      </button>
      {result?.ok ? (
        <p class="notice ok" role="status">
          Sent. Provider id: <code>{result.providerId}</code>
        </p>
      ) : null}
      {result && !result.ok ? (
        <p class="notice error" role="alert">
          Not sent: {result.error}
        </p>
      ) : null}
      <ErrorBox error={error} title="Test not sent" />
    </form>
  );
}

function PolicyForm({ settings }: { settings: SettingsView }) {
  const { api } = useApp();
  const [policy, setPolicy] = useState(settings.policy);
  const [testPolicy, setTestPolicy] = useState(settings.testPolicy ?? '');
  const [saved, setSaved] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState<string[]>([]);
  useEffect(() => setPolicy(settings.policy), [settings.policy]);
  useEffect(() => setTestPolicy(settings.testPolicy ?? ''), [settings.testPolicy]);
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    try {
      const account = await api.patch<AccountView>('/api/account', {
        notificationPolicy: policy,
        testNotificationPolicy: testPolicy || null,
      });
      setSaved(`Policy saved: ${POLICIES.find((p) => p.value === account.notificationPolicy)?.label ?? account.notificationPolicy}.`);
      setMissing(account.missing);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form onSubmit={save} aria-labelledby="policy-title">
      <h2 id="policy-title">Channel policy</h2>
      <fieldset class="policy">
        <legend>Which channels a notice goes out on</legend>
        {POLICIES.map((p) => (
          <div class="radio" key={p.value}>
            <input
              type="radio"
              id={`policy-${p.value}`}
              name="policy"
              value={p.value}
              checked={policy === p.value}
              aria-describedby={`policy-${p.value}-hint`}
              onChange={() => {
                setPolicy(p.value);
                setSaved(null);
              }}
            />
            <label for={`policy-${p.value}`}>{p.label}</label>
            <small id={`policy-${p.value}-hint`} class="hint">
              {p.explain}
            </small>
          </div>
        ))}
      </fieldset>
      <Select
        label="933 test calls"
        value={testPolicy}
        onChange={(v) => {
          setTestPolicy(v);
          setSaved(null);
        }}
        options={[{ value: '', label: 'Same as 911' }, ...POLICIES.map((p) => ({ value: p.value, label: p.label }))]}
        hint="Test calls may go out on fewer channels than a real 911, say the app only."
      />
      <ErrorBox error={error} />
      <Saved message={saved} />
      {saved && missing.length ? (
        <div class="notice warning">
          Still needed before E911 can be on:
          <ul>
            {missing.map((m) => (
              <li key={m}>{m}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <p class="actions">
        <button type="submit">Save policy</button>
      </p>
    </form>
  );
}
