import { useState } from 'preact/hooks';
import { api, ApiError, storeKey, type Page, type WorkflowSummary } from './api.ts';

/**
 * The API key form. The key is checked with one call (`GET /workflows?limit=1`) before it is kept;
 * a refused key shows the API's own 401 message. The field is a password field so it is not shown
 * or offered for autofill history.
 */
export function SignIn({ onSignedIn, notice }: { onSignedIn: () => void; notice: string | null }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api<Page<WorkflowSummary>>('GET', '/workflows?limit=1', undefined, key.trim());
      storeKey(key.trim());
      onSignedIn();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="sign-in" onSubmit={submit}>
      <h2>Sign in</h2>
      <p class="muted">
        Paste an API key of your account (<code>npx flowmachine accounts create</code> prints one). It stays in this tab
        only.
      </p>
      <label>
        API key
        <input
          type="password"
          name="api_key"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(event) => setKey((event.target as HTMLInputElement).value)}
          required
          data-api-key
        />
      </label>
      <button type="submit" disabled={busy || key.trim() === ''} data-sign-in>
        Sign in
      </button>
      {error && (
        <p class="error" role="alert" data-sign-in-error>
          {error}
        </p>
      )}
    </form>
  );
}
