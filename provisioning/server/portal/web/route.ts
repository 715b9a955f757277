// What the router gives each page: its own file, so pages and the router that lists them do not import each other.
export interface RouteProps {
  /** The path after the page's name: "#/users/12" gives ["12"]. */
  params: string[];
}
