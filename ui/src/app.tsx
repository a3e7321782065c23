import { useEffect, useState } from 'preact/hooks';
import { forgetKey, setUnauthorizedHandler, storedKey } from './api.ts';
import { ExecutionView } from './execution-view.tsx';
import { SignIn } from './sign-in.tsx';
import { WorkflowList } from './workflow-list.tsx';
import { WorkflowView } from './workflow-view.tsx';
import { parseRoute } from './app-route.ts';

/** The page: sign-in until a key is kept, then the view the hash names. */
export function App() {
  const [signedIn, setSignedIn] = useState(storedKey() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const [route, setRoute] = useState(parseRoute(location.hash));

  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onHash);
    // A key revoked while the page is open: back to sign-in with the API's message.
    setUnauthorizedHandler((message) => {
      forgetKey();
      setNotice(message);
      setSignedIn(false);
    });
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const signOut = () => {
    forgetKey();
    setNotice(null);
    setSignedIn(false);
  };

  return (
    <>
      <header class="top">
        <h1>
          <a href="#/">flowmachine</a> <span class="muted">designer's view</span>
        </h1>
        {signedIn && (
          <nav>
            <a href="#/">Workflows</a>
            <button type="button" class="link" onClick={signOut} data-sign-out>
              Sign out
            </button>
          </nav>
        )}
      </header>
      <main>
        {!signedIn ? (
          <SignIn
            notice={notice}
            onSignedIn={() => {
              setNotice(null);
              setSignedIn(true);
            }}
          />
        ) : route.view === 'workflow' ? (
          <WorkflowView key={route.id} id={route.id} />
        ) : route.view === 'execution' ? (
          <ExecutionView key={route.id} id={route.id} />
        ) : (
          <WorkflowList />
        )}
      </main>
    </>
  );
}
