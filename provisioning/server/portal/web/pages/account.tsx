// The account: its name and contact, turning E911 on (only once everything
// phones and notices need is there), the company defaults (address, callback
// number, emergency contacts: each used wherever a user or location has none of
// its own), and the recommendation override.
import { useEffect, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import { issuesByField } from '../api.js';
import type { AccountView } from '../types.js';
import { Checkbox, EmailList, ErrorBox, Field, Page, Saved, Select, listErrors, useApp, useLoad, when } from '../ui.js';
import { PlaceFields, emptyPlace, placeBody, placeForm, type PlaceForm } from '../place-address.js';

/** Where each missing item is fixed. */
function fixLink(item: string): { href: string; label: string } | null {
  if (/^the account/.test(item)) return null;
  if (/company/.test(item)) return { href: '#/account', label: 'Company defaults below' };
  if (/callback number|location for users/.test(item)) return { href: '#/users', label: 'Users' };
  if (/location/.test(item)) return { href: '#/locations/new', label: 'Add a location' };
  if (/SMTP|SMS|webhook/.test(item)) return { href: '#/notifications', label: 'Notifications' };
  return null;
}

export function AccountPage(_: RouteProps) {
  const { api, live } = useApp();
  const account = useLoad(() => api.get<AccountView>('/api/account'));
  const [name, setName] = useState('');
  const [contact, setContact] = useState('');
  const [detailsError, setDetailsError] = useState<unknown>(null);
  const [e911Error, setE911Error] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [confirmOff, setConfirmOff] = useState(false);
  const [busy, setBusy] = useState(false);
  // Shown at once when clicked; put back if the server refuses.
  const [rec, setRec] = useState<boolean | null>(null);
  const [defaults, setDefaults] = useState<Defaults>(noDefaults);
  const [defaultsError, setDefaultsError] = useState<unknown>(null);
  const a = account.data;

  useEffect(() => {
    if (!a) return;
    setName(a.name);
    setContact(a.contactEmail);
    setRec(a.recommendations);
    setDefaults(defaultsOf(a));
  }, [a?.updatedAt]);
  // Another administrator's change, or a location or user completing what was missing.
  useEffect(() => live.on('change', () => account.reload()), [live]);

  const act = async (what: () => Promise<unknown>, done: string, setErr: (e: unknown) => void) => {
    setBusy(true);
    setErr(null);
    setSaved(null);
    try {
      await what();
      setSaved(done);
      account.reload();
    } catch (err) {
      setErr(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldErrors = issuesByField((detailsError as { issues?: { field: string; reason: string }[] } | null)?.issues ?? []);
  const defaultErrors = issuesByField((defaultsError as { issues?: { field: string; reason: string }[] } | null)?.issues ?? []);

  return (
    <Page title="Account">
      <ErrorBox error={account.error} title="Could not load" />
      <Saved message={saved} />
      {a ? (
        <>
          <section aria-labelledby="e911-heading" class="card">
            <h2 id="e911-heading">E911</h2>
            {a.e911Enabled ? (
              <>
                <p class="ok" data-testid="e911-state">
                  E911 is enabled (since {when(a.e911ChangedAt)}). Phones hold their signed dispatchable address.
                </p>
                {confirmOff ? (
                  <div class="notice warning" role="alertdialog" aria-labelledby="off-q">
                    <p id="off-q">
                      <strong>Disable E911?</strong> Phones keep the address they hold, but no change reaches them until E911 is enabled
                      again.
                    </p>
                    <div class="actions">
                      <button
                        type="button"
                        class="danger"
                        disabled={busy}
                        onClick={() =>
                          act(() => api.post('/api/account/e911', { enabled: false }), 'E911 disabled.', setE911Error).then(() =>
                            setConfirmOff(false),
                          )
                        }
                      >
                        Disable E911
                      </button>
                      <button type="button" class="secondary" onClick={() => setConfirmOff(false)}>
                        Keep it enabled
                      </button>
                    </div>
                  </div>
                ) : (
                  <button type="button" class="secondary" onClick={() => setConfirmOff(true)}>
                    Disable E911…
                  </button>
                )}
              </>
            ) : (
              <>
                <p class="warn" data-testid="e911-state">
                  E911 is not enabled: no address is pushed to phones until it is.
                </p>
                {a.missing.length ? (
                  <>
                    <p id="missing-intro">Before it can be enabled, this is needed:</p>
                    <ul aria-labelledby="missing-intro" class="missing">
                      {a.missing.map((m) => {
                        const link = fixLink(m);
                        return (
                          <li key={m}>
                            {m}
                            {link ? (
                              <>
                                {' '}
                                (<a href={link.href}>{link.label}</a>)
                              </>
                            ) : null}
                          </li>
                        );
                      })}
                    </ul>
                  </>
                ) : (
                  <p>Everything E911 needs is in place.</p>
                )}
                <button
                  type="button"
                  disabled={busy || a.missing.length > 0}
                  aria-describedby={a.missing.length ? 'missing-intro' : undefined}
                  onClick={() =>
                    act(
                      () => api.post('/api/account/e911', { enabled: true }),
                      'E911 enabled: phones are receiving their addresses.',
                      setE911Error,
                    )
                  }
                >
                  Enable E911
                </button>
              </>
            )}
            <ErrorBox error={e911Error} title="Not changed" />
          </section>

          <form
            aria-labelledby="details-heading"
            onSubmit={(e) => {
              e.preventDefault();
              void act(
                () => api.patch('/api/account', { name: name.trim(), contactEmail: contact.trim() }),
                'Account details saved.',
                setDetailsError,
              );
            }}
          >
            <h2 id="details-heading">Account details</h2>
            <div class="grid">
              <Field label="Account name" value={name} onInput={setName} required maxLength={128} error={fieldErrors.name} />
              <Field
                label="Contact email"
                type="email"
                value={contact}
                onInput={setContact}
                required
                autoComplete="email"
                error={fieldErrors.contactEmail}
                hint="Who the provisioning operator writes to about this account."
              />
            </div>
            <ErrorBox error={detailsError} />
            <button type="submit" disabled={busy}>
              Save details
            </button>
          </form>

          <form
            aria-labelledby="defaults-heading"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              void act(() => api.patch('/api/account', defaultsBody(defaults)), 'Company defaults saved.', setDefaultsError);
            }}
          >
            <h2 id="defaults-heading">Company defaults</h2>
            <p>
              Each applies wherever a user or location has none of its own: on the phones (the address and callback they send with a 911
              call) and in the notices. E911 can be enabled once every user with a phone has an address and a callback number, their own or
              these.
            </p>
            <Checkbox
              label="A company default address"
              checked={defaults.hasAddress}
              onChange={(on) => setDefaults((d) => ({ ...d, hasAddress: on }))}
              hint="Sent by the phones of users with neither a location nor an own address."
            />
            {defaults.hasAddress ? (
              <PlaceFields
                legend="Company default address"
                value={defaults.address}
                onChange={(v) => setDefaults((d) => ({ ...d, address: v }))}
                errors={defaultErrors}
                prefix="defaultAddress"
              />
            ) : null}
            <fieldset>
              <legend>Company callback number</legend>
              <p class="hint">For users without a callback number of their own: the PSAP sees this number and name, and calls it back.</p>
              <div class="grid">
                <Field
                  label="Company callback number"
                  type="tel"
                  value={defaults.number}
                  onInput={(v) => setDefaults((d) => ({ ...d, number: v }))}
                  error={defaultErrors['defaultCallback.number'] ?? defaultErrors.defaultCallback}
                  hint="E.164, such as +14085550100. Empty: no company callback."
                />
                <Field
                  label="Callback display name"
                  value={defaults.displayName}
                  onInput={(v) => setDefaults((d) => ({ ...d, displayName: v }))}
                  error={defaultErrors['defaultCallback.displayName']}
                  maxLength={64}
                  hint="Sent with the company number, such as Example Corp Security."
                />
                <Select
                  label="Default language"
                  value={defaults.language}
                  onChange={(v) => setDefaults((d) => ({ ...d, language: v }))}
                  options={['en', 'en-US', 'en-CA', 'es', 'es-US', 'fr', 'fr-CA'].map((l) => ({ value: l, label: l }))}
                  error={defaultErrors['defaultCallback.language']}
                  hint="For users created without a language of their own."
                />
              </div>
            </fieldset>
            <EmailList
              legend="Company emergency contacts"
              hint="Emailed about a 911 or 933 call when the user, or the location, has no notification emails of its own."
              emails={defaults.contacts}
              onChange={(v) => setDefaults((d) => ({ ...d, contacts: v }))}
              errors={listErrors(defaultErrors, 'emergencyContacts')}
            />
            <ErrorBox error={defaultsError} />
            <button type="submit" disabled={busy}>
              Save company defaults
            </button>
          </form>

          <section aria-labelledby="rec-heading">
            <h2 id="rec-heading">Location recommendations</h2>
            <p>
              When a phone finds itself on a network that belongs to another location (its IP group or switch port), it can recommend that
              location to the user, who confirms it on the phone.
            </p>
            <Checkbox
              label="Recommend locations to every user"
              checked={rec ?? a.recommendations}
              disabled={busy}
              hint="On: every user gets recommendations, whatever their own setting. Off: each user's own setting (on the Users page) applies."
              onChange={(on) => {
                setRec(on);
                void act(
                  () => api.patch('/api/account', { recommendations: on }),
                  on ? 'Recommendations are on for every user.' : 'Recommendations follow each user\u2019s own setting.',
                  (e) => {
                    setDetailsError(e);
                    if (e) setRec(!on);
                  },
                );
              }}
            />
          </section>
        </>
      ) : null}
    </Page>
  );
}

interface Defaults {
  hasAddress: boolean;
  address: PlaceForm;
  number: string;
  displayName: string;
  language: string;
  contacts: string[];
}

const noDefaults: Defaults = { hasAddress: false, address: emptyPlace(), number: '', displayName: '', language: 'en', contacts: [] };

function defaultsOf(a: AccountView): Defaults {
  return {
    hasAddress: a.defaultAddress !== null,
    address: placeForm(a.defaultAddress),
    number: a.defaultCallback?.number ?? '',
    displayName: a.defaultCallback?.displayName ?? '',
    language: a.defaultCallback?.language ?? 'en',
    contacts: [...a.emergencyContacts],
  };
}

function defaultsBody(d: Defaults): Record<string, unknown> {
  const number = d.number.trim();
  return {
    defaultAddress: d.hasAddress ? placeBody(d.address) : null,
    defaultCallback: number || d.displayName.trim() ? { number, displayName: d.displayName.trim(), language: d.language } : null,
    emergencyContacts: d.contacts.map((e) => e.trim()).filter(Boolean),
  };
}
