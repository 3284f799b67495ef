// Command connect-go lists Compute Engine instances and Cloud Storage
// objects through airlock with endpoint overrides: every client sends the
// token file's token and talks to SERVICE.AIRLOCK_DOMAIN.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/compute/v1"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// tokenFile reads the token `airlock login` (or the kubelet) keeps fresh,
// each time a client needs one.
type tokenFile string

func (f tokenFile) Token() (*oauth2.Token, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: strings.TrimSpace(string(b)), TokenType: "Bearer"}, nil
}

func main() {
	ctx := context.Background()
	domain := os.Getenv("AIRLOCK_DOMAIN") // e.g. airlock.acme.example
	auth := option.WithTokenSource(tokenFile(os.Getenv("AIRLOCK_TOKEN_FILE")))

	// google.golang.org/api clients speak REST: give them the gateway's
	// base URL. (For Cloud Client Libraries that default to gRPC, use
	// their REST constructor, e.g. secretmanager.NewRESTClient.)
	svc, err := compute.NewService(ctx, auth, option.WithEndpoint("https://compute."+domain+"/compute/v1/"))
	if err != nil {
		log.Fatal(err)
	}
	list, err := svc.Instances.List("acme-prod", "us-east1-b").Context(ctx).Do()
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range list.Items {
		fmt.Println("instance", in.Name, in.Status)
	}

	gcs, err := storage.NewClient(ctx, auth, option.WithEndpoint("https://storage."+domain+"/storage/v1/"))
	if err != nil {
		log.Fatal(err)
	}
	defer gcs.Close()
	it := gcs.Bucket("acme-dev-builds").Objects(ctx, &storage.Query{Prefix: "release/"})
	for {
		o, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("object", o.Name)
	}
}
