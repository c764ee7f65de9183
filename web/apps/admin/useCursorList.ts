import { FormEvent, useEffect, useState } from "react";
import { ApiError } from "./api";

/** A page of a cursor-paginated route (the API's CursorPage). */
export interface CursorPage<T> {
  items: T[];
  next_cursor?: string | null;
}

/**
 * A list read page by page from a cursor route, for the filters applied: the first page whenever the filters
 * change (or `reload()` is called), "Load more" appending the next one (an item already shown is not shown twice),
 * and an answer for older filters dropped. Used by the Queue and Suppressions pages.
 */
export function useCursorList<T extends { id: string }, F>(
  fetchPage: (filters: F, after: string | null) => Promise<CursorPage<T>>,
  filters: F,
) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let current = true;
    fetchPage(filters, null).then(
      (page) => {
        if (!current) return;
        setItems(page.items);
        setCursor(page.next_cursor ?? null);
        setError(null);
      },
      (failure) => {
        if (current) setError((failure as ApiError).detail);
      },
    );
    return () => {
      current = false;
    };
  }, [fetchPage, filters, reloads]);

  const loadMore = async (after: string) => {
    try {
      const page = await fetchPage(filters, after);
      setItems((was) => [...was, ...page.items.filter((item) => !was.some((w) => w.id === item.id))]);
      setCursor(page.next_cursor ?? null);
      setError(null);
    } catch (failure) {
      setError((failure as ApiError).detail);
    }
  };

  return { items, setItems, cursor, error, loadMore, reload: () => setReloads((n) => n + 1) };
}

/**
 * A filter form: what is typed (`form`, bound with `field(name)`) applies on submit (`filters`); `clear()` resets
 * both. Used with `useCursorList` by the Queue and Suppressions pages.
 */
export function useFilterForm<F extends Record<string, string>>(empty: F) {
  const [form, setForm] = useState(empty);
  const [filters, setFilters] = useState(empty);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setFilters(form);
  };
  const field = (name: keyof F) => ({
    value: form[name], onChange: (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value }),
  });
  const clear = () => {
    setForm(empty);
    setFilters(empty);
  };
  return { filters, submit, field, clear };
}
