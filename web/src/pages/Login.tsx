// Sign-in, and the password change a first sign-in must make.
import { api, fieldError, Me } from '../api';
import { Field, Form, passwordHint } from '../ui';

export function Login({ onDone }: { onDone: (me: Me) => void }) {
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
