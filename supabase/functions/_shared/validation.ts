// Validation at the boundary: a zod schema per route; failures become a 400 naming the field.
import { z } from 'zod';
import { HttpError } from './http.ts';

export function fieldPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(body)' : path.map(String).join('.');
}

export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where = 'body'): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const unknownKeys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : null;
    return {
      field: unknownKeys ? unknownKeys.join(', ') : fieldPath(issue.path),
      message: unknownKeys ? `unknown field${unknownKeys.length > 1 ? 's' : ''}` : issue.message,
    };
  });
  const first = issues[0];
  throw new HttpError(400, 'invalid_request', `Invalid ${where}: ${first.field}: ${first.message}`, issues);
}
