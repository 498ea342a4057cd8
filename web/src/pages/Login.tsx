// Sign-in, a sign-up where self-registration is on, and the password
// change a first sign-in must make.
import { useState } from 'preact/hooks';
import { api, fieldError, Me } from '../api';
import { Field, Form, passwordHint, useAsync } from '../ui';

/** A sign-up: the account waits for an admin's approval. */
function SignUp({ rules, onBack }: { rules?: { min_length: number }; onBack: () => void }) {
  const [done, setDone] = useState('');
  if (done)
    return (
      <div role="status" data-testid="signup-done">
        <p>Thanks, {done}. Your account waits for an admin's approval; you can sign in once it is approved.</p>
        <button type="button" class="link" onClick={onBack}>Back to sign in</button>
      </div>
    );
  return (
    <Form label="Sign up" onSubmit={async (f) => {
      if (f.get('password') !== f.get('repeat')) throw fieldError('repeat', 'the two passwords differ');
      const r = await api<any>('POST', '/api/v1/auth/signup', { username: f.get('username'), password: f.get('password') });
      setDone(r.username);
    }}>
      <Field label="User name" name="username" required autocomplete="username" />
      <Field label="Password" name="password" type="password" required autocomplete="new-password" hint={passwordHint(rules)} />
      <Field label="Repeat the password" name="repeat" type="password" required autocomplete="new-password" />
      <button type="submit" class="primary">Ask for an account</button>
      <button type="button" class="link" onClick={onBack}>I have an account</button>
    </Form>
  );
}

export function Login({ onDone }: { onDone: (me: Me) => void }) {
  const signup = useAsync(() => api<any>('GET', '/api/v1/auth/signup'), []);
  const [signingUp, setSigningUp] = useState(false);
  if (signingUp)
    return (
      <main class="login">
        <h1>gpufleet</h1>
        <SignUp rules={signup.data?.password_rules} onBack={() => setSigningUp(false)} />
      </main>
    );
  return (
    <main class="login">
      <h1>gpufleet</h1>
      <Form
        label="Sign in"
        onSubmit={async (f) => {
          await api('POST', '/api/v1/auth/login', { username: f.get('username'), password: f.get('password') });
          onDone(await api<Me>('GET', '/api/v1/auth/me'));
        }}
      >
        <Field label="User name" name="username" required autocomplete="username" />
        <Field label="Password" name="password" type="password" required autocomplete="current-password" />
        <button type="submit" class="primary">Sign in</button>
      </Form>
      {signup.data?.enabled && <p class="muted small">No account? <button type="button" class="link" onClick={() => setSigningUp(true)}>Sign up</button>; an admin approves it.</p>}
    </main>
  );
}

export function ChangePassword({ me, onDone, forced }: { me: Me; onDone: () => void; forced?: boolean }) {
  return (
    <main class={forced ? 'login' : ''}>
      {forced && <h1>Choose a new password</h1>}
      {forced && <p>Welcome, {me.username}. Your first password must be changed before anything else.</p>}
      <Form
        label="Change password"
        onSubmit={async (f) => {
          if (f.get('new_password') !== f.get('repeat')) throw fieldError('repeat', 'the two new passwords differ');
          await api('POST', '/api/v1/auth/password', {
            current_password: f.get('current_password'),
            new_password: f.get('new_password'),
          });
          onDone();
        }}
      >
        <input type="text" name="username" value={me.username} autocomplete="username" hidden />
        <Field label="Current password" name="current_password" type="password" required autocomplete="current-password" />
        <Field label="New password" name="new_password" type="password" required autocomplete="new-password" hint={passwordHint(me.password_rules)} />
        <Field label="Repeat the new password" name="repeat" type="password" required autocomplete="new-password" />
        <button type="submit" class="primary">Change password</button>
      </Form>
    </main>
  );
}
