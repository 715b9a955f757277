// CSV round trip: download every user pre-filled, edit the Email columns in a
// spreadsheet, upload it (drag and drop or a file picker) for a validation
// report with nothing applied, then Update applies it as a job: the valid rows
// (rows with errors skipped) or, as the admin chooses, nothing while any row is
// wrong; the outcome says which was done.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import { ApiError } from '../api.js';
import type { CsvApplyMode, CsvApplyResult, CsvReport, Job } from '../types.js';
import { ErrorBox, JobProgress, Page, Table, useApp, useJob } from '../ui.js';
import './csv.css';

export function CsvPage(_: RouteProps) {
  const { api } = useApp();
  const [file, setFile] = useState<{ name: string; size: number } | null>(null);
  const [checking, setChecking] = useState(false);
  const [report, setReport] = useState<CsvReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [applyError, setApplyError] = useState<unknown>(null);
  const [queued, setQueued] = useState<Job | null>(null);
  const [mode, setMode] = useState<CsvApplyMode>('valid-rows');
  const job = useJob(queued);
  const [over, setOver] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const reportHeading = useRef<HTMLHeadingElement>(null);

  // A file dropped beside the zone would make the browser open it and leave the portal.
  useEffect(() => {
    const stop = (e: DragEvent) => e.preventDefault();
    addEventListener('dragover', stop);
    addEventListener('drop', stop);
    return () => {
      removeEventListener('dragover', stop);
      removeEventListener('drop', stop);
    };
  }, []);

  useEffect(() => {
    if (report) reportHeading.current?.focus();
  }, [report]);

  const validate = async (f: File) => {
    setFile({ name: f.name, size: f.size });
    setReport(null);
    setError(null);
    setApplyError(null);
    setQueued(null);
    setChecking(true);
    try {
      setReport(await api.call<CsvReport>('POST', '/api/csv/users/validate', f, 'text/csv'));
    } catch (e) {
      setError(e);
    } finally {
      setChecking(false);
      // The same file chosen again (after editing it) must still fire change.
      if (picker.current) picker.current.value = '';
    }
  };

  const apply = async () => {
    if (!report?.uploadId) return;
    setApplyError(null);
    try {
      setQueued(await api.post<Job>(`/api/csv/uploads/${encodeURIComponent(report.uploadId)}/apply`, { mode }));
    } catch (e) {
      setApplyError(e);
    }
  };

  const errorTitle =
    error instanceof ApiError && error.status === 413
      ? 'The file is too large'
      : error instanceof ApiError && error.status === 400
        ? 'The file cannot be read as the users CSV'
        : 'Not checked';
  const canApply = !!report?.uploadId && report.changes > 0 && !queued;

  return (
    <Page title="CSV">
      <ol class="csv-steps">
        <li>
          <h2>1. Download the users</h2>
          <p>
            One row per user: who they are (UserId, Username, DisplayName, Extension, LocationCode, LocationName) and their notification
            emails in <code>Email1</code> to <code>Email10</code>. Only the Email columns change anything; the others say whose row it is.
          </p>
          <a class="button" href="/api/csv/users" download>
            Download users CSV
          </a>
        </li>
        <li>
          <h2>2. Edit the Email columns</h2>
          <p>
            In a spreadsheet, put each user's addresses in Email1, Email2, … (empty cells are skipped). A row's addresses{' '}
            <strong>replace</strong> that user's whole list. Save as <q>CSV UTF-8</q>.
          </p>
        </li>
        <li>
          <h2>3. Upload it to check</h2>
          {/* biome-ignore lint/a11y/useSemanticElements: a drop zone, not a button: a <button> would take the hint into its name and bring button styling */}
          <div
            class={over ? 'drop over' : 'drop'}
            role="button"
            tabIndex={0}
            aria-describedby="csv-drop-hint"
            onClick={() => picker.current?.click()}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault();
                picker.current?.click();
              }
            }}
            onDragEnter={(e) => {
              e.preventDefault();
              setOver(true);
            }}
            onDragOver={(e) => {
              e.preventDefault();
              if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
              setOver(true);
            }}
            onDragLeave={() => setOver(false)}
            onDrop={(e) => {
              e.preventDefault();
              setOver(false);
              const f = e.dataTransfer?.files[0];
              if (f) void validate(f);
              else setError(new Error('nothing readable was dropped: drop the .csv file itself'));
            }}
          >
            <strong>Drop the CSV file here</strong>
            <span id="csv-drop-hint" class="hint">
              or press Enter to choose it. Nothing is applied when you upload: you get a report first.
            </span>
          </div>
          <div class="field csv-picker">
            <label for="csv-file">Or choose a CSV file</label>
            <input
              id="csv-file"
              ref={picker}
              type="file"
              accept=".csv,text/csv"
              onChange={(e) => {
                const f = (e.currentTarget as HTMLInputElement).files?.[0];
                if (f) void validate(f);
              }}
            />
          </div>
          {checking ? <p role="status">Checking {file?.name}…</p> : null}
          <ErrorBox error={error} title={errorTitle} />
        </li>
      </ol>

      {report ? (
        <section aria-labelledby="csv-report-title" class="csv-report">
          <h2 id="csv-report-title" ref={reportHeading} tabIndex={-1}>
            Validation report{file ? `: ${file.name}` : ''}
          </h2>
          <p class="notice warning" role="status">
            <strong>Nothing has been applied yet.</strong> Update applies the{' '}
            {report.changes === 1 ? 'one changed row' : `${report.changes} changed rows`}, replacing those users' notification lists
            {report.errorCount ? '; rows with errors are skipped (fix them and upload the file again to include them)' : ''}.
          </p>
          <dl class="csv-summary">
            <div>
              <dt>Rows</dt>
              <dd data-testid="csv-rows">{report.rows}</dd>
            </div>
            <div>
              <dt>Changes</dt>
              <dd data-testid="csv-changes">{report.changes}</dd>
            </div>
            <div>
              <dt>Unchanged</dt>
              <dd data-testid="csv-unchanged">{report.unchanged}</dd>
            </div>
            <div class={report.errorCount ? 'bad' : 'ok'}>
              <dt>Errors</dt>
              <dd data-testid="csv-errors">{report.errorCount}</dd>
            </div>
          </dl>
          {report.errors.length ? (
            <Table
              class="csv-errors"
              caption="Rows with errors (numbered as in the spreadsheet: row 1 is the header)"
              showCaption
              headers={['Row', 'Column', 'Reason']}
            >
              {report.errors.map((e, i) => (
                <tr key={i}>
                  <th scope="row">{e.row}</th>
                  <td>{e.column}</td>
                  <td>{e.reason}</td>
                </tr>
              ))}
            </Table>
          ) : (
            <p class="ok">No errors.</p>
          )}
          {report.errorCount > report.errors.length ? (
            <p class="notice warning">
              Only the first {report.errors.length} of {report.errorCount} errors are listed.
            </p>
          ) : null}
          <fieldset class="csv-mode">
            <legend>When a row is wrong</legend>
            {(
              [
                ['valid-rows', 'Apply the valid rows, skip the rows with errors'],
                ['all-or-nothing', 'Apply nothing while any row is wrong'],
              ] as const
            ).map(([value, label]) => (
              <div class="check" key={value}>
                <input
                  type="radio"
                  id={`csv-mode-${value}`}
                  name="csv-mode"
                  checked={mode === value}
                  disabled={!!queued}
                  onChange={() => setMode(value)}
                />
                <label for={`csv-mode-${value}`}>{label}</label>
              </div>
            ))}
          </fieldset>
          <ErrorBox error={applyError} title="Nothing applied" />
          <div class="actions">
            <button type="button" disabled={!canApply} aria-describedby="csv-apply-hint" onClick={apply}>
              Update
            </button>
            <span id="csv-apply-hint" class="muted">
              {queued
                ? 'This upload is being applied; upload a file again for more changes.'
                : report.changes > 0
                  ? `Applies ${report.changes === 1 ? '1 change' : `${report.changes} changes`} in the background.`
                  : 'Nothing to apply: no row changes a list.'}
            </span>
          </div>
        </section>
      ) : null}

      {job ? (
        <section aria-labelledby="csv-job-title" class="csv-job">
          <h2 id="csv-job-title">Progress</h2>
          <JobProgress job={job} />
          {job.status === 'done' ? <ApplyOutcome result={job.result as CsvApplyResult | null} /> : null}
          {job.status === 'done' ? (
            <p>
              <a href="/api/csv/users" download>
                Download the users CSV again
              </a>{' '}
              to see the lists as they are now.
            </p>
          ) : null}
        </section>
      ) : null}
    </Page>
  );
}

/** What the apply did, in words: the valid rows (how many skipped), every row, or nothing. */
function ApplyOutcome({ result: r }: { result: CsvApplyResult | null }) {
  if (!r?.applied) return null;
  const rows = (n: number) => (n === 1 ? '1 row' : `${n} rows`);
  return (
    <p data-testid="csv-outcome" class={r.applied === 'nothing' ? 'warn' : 'ok'}>
      {r.applied === 'valid-rows'
        ? `Applied the valid rows; ${rows(r.skippedRows)} with errors ${r.skippedRows === 1 ? 'was' : 'were'} skipped.`
        : r.applied === 'all-rows'
          ? 'Applied every row: no row had an error.'
          : `Nothing was applied: ${r.reason ?? 'a row was wrong'}.`}
    </p>
  );
}
