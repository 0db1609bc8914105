import { h } from './dom.ts';

let pending: Promise<string> | undefined;

/**
 * Asks for an API token in a dialog over the page and resolves with it. Requests that meet a 401 at the
 * same time share one dialog. `error` says why the previous token was not accepted.
 */
export function askForToken(error?: string): Promise<string> {
  pending ??= new Promise<string>((resolve) => {
    const input = h('input', {
      type: 'password',
      id: 'token-input',
      autocomplete: 'off',
      placeholder: 'tg_…',
      'aria-label': 'API token',
    });
    const dialog = h(
      'div',
      { class: 'overlay', id: 'token-dialog' },
      h(
        'form',
        {
          class: 'dialog',
          onsubmit: (event) => {
            event.preventDefault();
            const token = input.value.trim();
            if (token === '') return;
            dialog.remove();
            pending = undefined;
            resolve(token);
          },
        },
        h('h2', {}, 'This daemon needs a token'),
        h(
          'p',
          {},
          'Paste a token from ',
          h('code', {}, 'testground token add'),
          ' (a viewer token is enough to look). It is kept for this browser tab only.',
        ),
        error ? h('p', { class: 'error', id: 'token-error', role: 'alert' }, error) : null,
        input,
        h('button', { type: 'submit' }, 'Sign in'),
      ),
    );
    document.body.appendChild(dialog);
    input.focus();
  });
  return pending;
}
