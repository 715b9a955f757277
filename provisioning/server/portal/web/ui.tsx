// Small shared pieces of the portal: the app context, labelled fields and
// their hint and error lines, lists of inputs with + and -, tables, the
// two-step delete, error summaries, job progress, data loading.
// Over 400 lines: the one shared kit every page uses, so the pages hold no copies of it.
import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useId, useState } from 'preact/hooks';
import { ApiError, type Api, type FieldIssue } from './api.js';
import type { LiveStream } from './live.js';
import type { Job } from './types.js';

export interface Ctx {
  api: Api;
  live: LiveStream;
  navigate: (hash: string) => void;
}
export const AppContext = createContext<Ctx | null>(null);
export function useApp(): Ctx {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside the portal');
  return ctx;
}

/** Loads once (and on reload()); the error is kept for display, never swallowed. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): { data: T | undefined; error: Error | null; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
      },
      (e: Error) => live && setError(e),
    );
    return () => {
      live = false;
    };
    // Reloads on reload() and on the caller's deps only: load is a new closure on every render.
  }, [n, ...deps]);
  return { data, error, reload: useCallback(() => setN((x) => x + 1), []) };
}

interface FieldProps {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | undefined;
  hint?: string;
  type?: string;
  required?: boolean;
  name?: string;
  autoComplete?: string;
  maxLength?: number;
  placeholder?: string;
  onBlur?: () => void;
  list?: string;
}

/** A labelled input whose error is announced and tied to it (aria-describedby). */
export function Field(p: FieldProps) {
  const id = useId();
  const described = [p.hint ? `${id}-hint` : '', p.error ? `${id}-err` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field${p.error ? ' invalid' : ''}`}>
      <label for={id}>
        {p.label}
        {p.required ? <span aria-hidden="true"> *</span> : null}
      </label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? 'text'}
        value={p.value}
        required={p.required}
        autoComplete={p.autoComplete}
        maxLength={p.maxLength}
        placeholder={p.placeholder}
        list={p.list}
        aria-invalid={p.error ? 'true' : undefined}
        aria-describedby={described}
        onInput={(e) => p.onInput((e.currentTarget as HTMLInputElement).value)}
        onBlur={p.onBlur}
      />
      <HintAndError id={id} hint={p.hint} error={p.error} />
    </div>
  );
}

/** A field's hint and error lines, with the ids its input's aria-describedby names. */
function HintAndError({ id, hint, error }: { id: string; hint?: string | undefined; error?: string | undefined }) {
  return (
    <>
      {hint ? (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
      {error ? (
        <small id={`${id}-err`} class="error">
          {error}
        </small>
      ) : null}
    </>
  );
}

interface SelectProps {
  label: string;
  value: string;
  onChange: (v: string) => void;
  options: { value: string; label: string }[];
  error?: string | undefined;
  hint?: string;
  required?: boolean;
}

export function Select(p: SelectProps) {
  const id = useId();
  return (
    <div class={`field${p.error ? ' invalid' : ''}`}>
      <label for={id}>{p.label}</label>
      <select
        id={id}
        value={p.value}
        required={p.required}
        aria-invalid={p.error ? 'true' : undefined}
        aria-describedby={p.error ? `${id}-err` : p.hint ? `${id}-hint` : undefined}
        onChange={(e) => p.onChange((e.currentTarget as HTMLSelectElement).value)}
      >
        {p.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <HintAndError id={id} hint={p.hint} error={p.error} />
    </div>
  );
}

export function Checkbox(p: { label: string; checked: boolean; onChange: (v: boolean) => void; disabled?: boolean; hint?: string }) {
  const id = useId();
  return (
    <div class="check">
      <input
        id={id}
        type="checkbox"
        checked={p.checked}
        disabled={p.disabled}
        aria-describedby={p.hint ? `${id}-hint` : undefined}
        onChange={(e) => p.onChange((e.currentTarget as HTMLInputElement).checked)}
      />
      <label for={id}>{p.label}</label>
      {p.hint ? (
        <small id={`${id}-hint`} class="hint">
          {p.hint}
        </small>
      ) : null}
    </div>
  );
}

export const MAX_EMAILS = 10;

/**
 * Up to `max` email inputs with + (add) and − (remove). Errors are keyed by
 * index, as the server reports them ("emails.2").
 */
export function EmailList(p: {
  legend: string;
  emails: string[];
  onChange: (v: string[]) => void;
  errors?: Record<number, string>;
  max?: number;
  hint?: string;
}) {
  const max = p.max ?? MAX_EMAILS;
  const baseId = useId();
  const set = (i: number, v: string) => p.onChange(p.emails.map((e, j) => (j === i ? v : e)));
  return (
    <fieldset class="emails">
      <legend>{p.legend}</legend>
      {p.hint ? <p class="hint">{p.hint}</p> : null}
      {p.emails.length === 0 ? <p class="muted">No email addresses.</p> : null}
      <ol>
        {p.emails.map((e, i) => {
          const id = `${baseId}-${i}`;
          const err = p.errors?.[i];
          return (
            <li key={i} class={err ? 'invalid' : ''}>
              <label for={id} class="visually-hidden">{`Email ${i + 1}`}</label>
              <input
                id={id}
                type="email"
                value={e}
                aria-invalid={err ? 'true' : undefined}
                aria-describedby={err ? `${id}-err` : undefined}
                onInput={(ev) => set(i, (ev.currentTarget as HTMLInputElement).value)}
              />
              <button
                type="button"
                class="icon"
                aria-label={`Remove email ${i + 1}${e ? ` (${e})` : ''}`}
                onClick={() => p.onChange(p.emails.filter((_, j) => j !== i))}
              >
                −
              </button>
              {err ? (
                <small id={`${id}-err`} class="error">
                  {err}
                </small>
              ) : null}
            </li>
          );
        })}
      </ol>
      <button
        type="button"
        class="icon add"
        aria-label="Add email"
        disabled={p.emails.length >= max}
        onClick={() => p.onChange([...p.emails, ''])}
      >
        +
      </button>
      <small class="hint">
        {p.emails.length} of {max}
      </small>
    </fieldset>
  );
}

/**
 * Up to `max` labelled text inputs with + and −. `item` names one input ("Phone"
 * makes "Phone 2"); `action` is how the buttons say it ("Remove phone 2"), `item` by default.
 */
export function TextList(p: {
  legend: string;
  item: string;
  action?: string;
  values: string[];
  onChange: (v: string[]) => void;
  errors: Record<number, string>;
  max: number;
  hint?: string;
  type?: string;
  placeholder?: string;
  onBlur?: () => void;
  class?: string;
}) {
  const action = p.action ?? p.item;
  return (
    <fieldset class={p.class ?? 'text-list'} onFocusOut={p.onBlur}>
      <legend>{p.legend}</legend>
      {p.hint ? <p class="hint">{p.hint}</p> : null}
      <ol>
        {p.values.map((v, i) => (
          <li key={i}>
            <Field
              label={`${p.item} ${i + 1}`}
              type={p.type ?? 'text'}
              value={v}
              placeholder={p.placeholder}
              onInput={(x) => p.onChange(p.values.map((y, j) => (j === i ? x : y)))}
              error={p.errors[i]}
            />
            <button
              type="button"
              class="icon"
              aria-label={`Remove ${action} ${i + 1}`}
              onClick={() => p.onChange(p.values.filter((_, j) => j !== i))}
            >
              −
            </button>
          </li>
        ))}
      </ol>
      <button
        type="button"
        class="icon add"
        aria-label={`Add ${action}`}
        disabled={p.values.length >= p.max}
        onClick={() => p.onChange([...p.values, ''])}
      >
        +
      </button>
    </fieldset>
  );
}

/** Index-keyed errors of a list field ("emails.3" → {3: reason}). */
export function listErrors(byField: Record<string, string>, prefix: string): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(byField)) {
    const m = new RegExp(`^${prefix.replace('.', '\\.')}\\.(\\d+)$`).exec(k);
    if (m) out[Number(m[1])] = v;
  }
  return out;
}

/** A failed request: its message, and the server's reasons when it gave them. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error as Error;
  const issues: FieldIssue[] = error instanceof ApiError ? error.issues : [];
  const missing: string[] = error instanceof ApiError ? error.missing : [];
  return (
    <div class="notice error" role="alert">
      <strong>{title ?? 'Not saved'}</strong>: {e.message}
      {issues.length ? (
        <ul>
          {issues.map((i) => (
            <li key={i.field + i.reason}>
              <code>{i.field}</code> {i.reason}
            </li>
          ))}
        </ul>
      ) : null}
      {missing.length ? (
        <ul>
          {missing.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/**
 * A table with one header row of column headers; the caller gives the body rows. The caption
 * is for screen readers unless showCaption; wrap puts it in a horizontally scrolling box.
 */
export function Table(p: {
  class: string;
  headers: string[];
  caption?: string;
  showCaption?: boolean;
  wrap?: boolean;
  children: ComponentChildren;
}) {
  const table = (
    <table class={p.class}>
      {p.caption ? <caption class={p.showCaption ? undefined : 'visually-hidden'}>{p.caption}</caption> : null}
      <thead>
        <tr>
          {p.headers.map((h) => (
            <th key={h} scope="col">
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{p.children}</tbody>
    </table>
  );
  return p.wrap ? <div class="table-wrap">{table}</div> : table;
}

/** Delete in two steps: the button, then a question with Delete and Cancel. */
export function ConfirmDelete(p: {
  label: string;
  question: ComponentChildren;
  confirming: boolean;
  setConfirming: (on: boolean) => void;
  onDelete: () => void;
  describedBy?: string;
}) {
  return p.confirming ? (
    // biome-ignore lint/a11y/useSemanticElements: an inline pair of buttons inside a table row; a fieldset brings the form-section border and spacing
    <span role="group" aria-label="Confirm delete" class="actions">
      <span>{p.question}</span>
      <button type="button" class="danger" onClick={p.onDelete}>
        Delete
      </button>
      <button type="button" class="secondary" onClick={() => p.setConfirming(false)}>
        Cancel
      </button>
    </span>
  ) : (
    <button type="button" class="secondary" onClick={() => p.setConfirming(true)} aria-describedby={p.describedBy}>
      {p.label}
    </button>
  );
}

export function Saved({ message }: { message: string | null }) {
  return (
    <p class="notice ok" role="status" hidden={!message}>
      {message}
    </p>
  );
}

export function JobProgress({ job }: { job: Job }) {
  const pct = job.total > 0 ? Math.round((job.done / job.total) * 100) : job.status === 'done' ? 100 : 0;
  const r = (job.result ?? {}) as { updated?: number; unchanged?: number; missing?: number };
  return (
    <div class="job" data-job-status={job.status} role="status" aria-live="polite">
      <label>
        Job {job.id} ({job.kind}): {job.status}
        <progress
          max={Math.max(job.total, 1)}
          value={job.status === 'done' ? Math.max(job.total, 1) : job.done}
          aria-valuetext={`${pct}%`}
        />
      </label>
      <span class="muted">
        {job.done} of {job.total} users ({pct}%)
      </span>
      {job.status === 'done' ? (
        <p>
          Done: {r.updated ?? 0} updated, {r.unchanged ?? 0} unchanged{r.missing ? `, ${r.missing} not found` : ''}.
        </p>
      ) : null}
      {job.error ? <p class="error">{job.error}</p> : null}
    </div>
  );
}

const JOB_STAGE: Record<string, number> = { queued: 0, running: 1, done: 2, failed: 2 };

/** Whether b is no older than a: the stream and a read arrive on two connections and may cross. */
function notOlder(a: Job | null, b: Job): boolean {
  if (!a || a.id !== b.id) return true;
  const sa = JOB_STAGE[a.status] ?? 0;
  const sb = JOB_STAGE[b.status] ?? 0;
  return sb > sa || (sb === sa && b.done >= a.done);
}

/** Follows one job live (the event stream) until it ends. */
export function useJob(initial: Job | null): Job | null {
  const { live, api } = useApp();
  const [job, setJob] = useState<Job | null>(initial);
  useEffect(() => {
    setJob(initial);
    if (!initial) return;
    const take = (j: Job) => setJob((cur) => (notOlder(cur, j) ? j : cur));
    const off = live.on('job', (j) => {
      if (j.id === initial.id) take(j);
    });
    // The job may move while the stream is not listening (before the subscription, during a
    // reconnect): read it as well, every 2 s until it ends.
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = () =>
      api.get<Job>(`/api/jobs/${initial.id}`).then(
        (j) => {
          take(j);
          if (!stopped && (j.status === 'queued' || j.status === 'running')) timer = setTimeout(read, 2000);
        },
        (e: Error) => {
          console.warn(`job ${initial.id}: ${e.message}`);
          if (!stopped) timer = setTimeout(read, 2000);
        },
      );
    void read();
    return () => {
      stopped = true;
      clearTimeout(timer);
      off();
    };
  }, [initial, live, api]);
  return job;
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · E911 admin`;
  }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {title}
        </h1>
        {actions ? <div class="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
