// Light and dark themes: follows the system (prefers-color-scheme) unless the user picked one.
export type ThemeMode = 'auto' | 'light' | 'dark';

const KEY = 'flowlens.theme';
const media = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : undefined;

function stored(): ThemeMode {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'auto';
  } catch {
    return 'auto';
  }
}

export const theme = $state({ mode: stored(), resolved: 'light' as 'light' | 'dark' });

function apply(): void {
  theme.resolved = theme.mode === 'auto' ? (media?.matches ? 'dark' : 'light') : theme.mode;
  document.documentElement.dataset.theme = theme.resolved;
}

export function setTheme(mode: ThemeMode): void {
  theme.mode = mode;
  try {
    if (mode === 'auto') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, mode);
  } catch {
    // not kept
  }
  apply();
}

export function initTheme(): void {
  apply();
  media?.addEventListener('change', apply);
}

/** A CSS custom property's value on the root element (chart colours follow the theme). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
